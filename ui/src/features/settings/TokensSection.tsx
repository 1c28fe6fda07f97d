// Hugging Face and CivitAI tokens for downloads: set, replace or remove; the app only ever learns whether each
// is set (the value goes straight to the OS keychain and is never read back).
import { useEffect, useState } from "react";
import { commands, type TokenHost, type TokenStatus } from "../../bindings";
import { Badge } from "../../components/Badge";
import { Button } from "../../components/Button";
import { Loading } from "../../components/Spinner";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";

export function TokensSection() {
  const toast = useToast();
  const [tokens, setTokens] = useState<TokenStatus[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    call(commands.tokensList())
      .then((t) => live && setTokens(t))
      .catch((e) => live && setLoadError(errorMessage(e)));
    return () => {
      live = false;
    };
  }, []);

  function replace(next: TokenStatus) {
    setTokens((all) => (all ?? []).map((t) => (t.host === next.host ? next : t)));
  }

  return (
    <section className="card" aria-labelledby="settings-tokens">
      <h2 id="settings-tokens" className="card-title">
        Model host tokens
      </h2>
      <p className="field-hint">
        Used to download gated or private models. Each token is sent only to its own site and kept in your system keychain.
      </p>
      {loadError ? (
        <p className="notice notice-bad" role="alert" data-testid="tokens-error">
          {loadError}
        </p>
      ) : !tokens ? (
        <Loading>Loading…</Loading>
      ) : (
        <ul className="token-list">
          {tokens.map((t) => (
            <TokenRow
              key={t.host}
              token={t}
              onChange={replace}
              onError={(message) => toast.show(message, { kind: "error", title: `The ${t.label} token was not saved` })}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

function TokenRow({ token, onChange, onError }: { token: TokenStatus; onChange: (t: TokenStatus) => void; onError: (m: string) => void }) {
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const inputId = `token-${token.host}`;

  async function run(action: (host: TokenHost) => Promise<TokenStatus>) {
    setBusy(true);
    try {
      onChange(await action(token.host));
      setValue("");
    } catch (e) {
      onError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <li className="token-row" data-testid={`token-${token.host}`} data-set={token.set}>
      <div className="token-head">
        <label htmlFor={inputId} className="check-label">
          {token.label}
        </label>
        <Badge tone={token.set ? "ok" : "neutral"} data-testid={`token-${token.host}-state`}>
          {token.set ? "Set" : "Not set"}
        </Badge>
      </div>
      <form
        className="token-form"
        onSubmit={(e) => {
          e.preventDefault();
          void run((host) => call(commands.tokensSet(host, value)));
        }}
      >
        <input
          id={inputId}
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder={token.set ? "Paste a new token to replace it" : "Paste the token"}
          value={value}
          data-testid={`token-${token.host}-input`}
          onChange={(e) => setValue(e.target.value)}
        />
        <Button type="submit" size="sm" busy={busy} disabled={busy || value.trim() === ""} data-testid={`token-${token.host}-save`}>
          Save
        </Button>
        {token.set && (
          <Button size="sm" variant="ghost" disabled={busy} data-testid={`token-${token.host}-remove`} onClick={() => void run((host) => call(commands.tokensRemove(host)))}>
            Remove
          </Button>
        )}
      </form>
      {!token.set && <p className="field-hint">{token.hint}</p>}
    </li>
  );
}
