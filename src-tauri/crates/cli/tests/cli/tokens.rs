//! `comfyfleet tokens`: a model host token goes into the real keychain from stdin, another process sees that it is
//! set, and its value never appears in any output.

use crate::{stderr, Cli};

#[test]
fn cli_tokens_are_stored_in_the_keychain_never_shown_and_removed() {
    let cli = Cli::new();
    let token = format!("hf_cli_test_{}", std::process::id());
    let out = cli.ok(
        &["tokens", "set", "huggingface"],
        Some(&format!("{token}\n")),
    );
    assert!(out.contains("Hugging Face: set"), "{out}");
    assert!(!out.contains(&token));

    // Another process reads the keychain: set, and the value is nowhere in what it prints.
    let list = cli.json(&["tokens", "list", "--json"]);
    assert_eq!(list[0]["host"], "huggingface");
    assert_eq!(list[0]["set"], true);
    assert!(!list.to_string().contains(&token));
    let text = cli.ok(&["tokens", "list"], None);
    assert!(
        text.contains("Hugging Face: set") && !text.contains(&token),
        "{text}"
    );

    let out = cli.ok(&["tokens", "remove", "hf"], None);
    assert!(out.contains("Hugging Face: not set"), "{out}");
    assert_eq!(cli.json(&["tokens", "list", "--json"])[0]["set"], false);

    let bad = cli.run(&["tokens", "set", "github"], Some("x"));
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("use huggingface (or hf) or civitai"),
        "{}",
        stderr(&bad)
    );
    let spaced = cli.run(&["tokens", "set", "civitai"], Some("two words"));
    assert!(stderr(&spaced).contains("spaces"), "{}", stderr(&spaced));
}
