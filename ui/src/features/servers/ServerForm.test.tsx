import { screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { ServerInput } from "../../bindings";
import { connected, failed, installFakeBackend, server, uiError } from "../../test/fakeBackend";
import { renderApp } from "../../test/render";

async function openAddForm(user: ReturnType<typeof renderApp>["user"]) {
  await screen.findByTestId("add-server");
  await user.click(screen.getByTestId("add-server"));
  return screen.findByTestId("server-form");
}

describe("Add / edit server form", () => {
  it("opens with focus on the name, and Escape closes it", async () => {
    installFakeBackend();
    const { user } = renderApp("servers");
    const form = await openAddForm(user);
    expect(within(form).getByTestId("server-name")).toHaveFocus();
    expect(within(form).getByTestId("server-url-input")).toHaveAttribute("placeholder", "http://127.0.0.1:8188");
    await user.keyboard("{Escape}");
    expect(screen.queryByTestId("server-form")).not.toBeInTheDocument();
    expect(screen.getByTestId("add-server")).toHaveFocus();
  });

  it("flags an empty name, a too long name and a URL without http(s)://, without calling Rust", async () => {
    const fake = installFakeBackend();
    const { user } = renderApp("servers");
    const form = await openAddForm(user);

    await user.click(within(form).getByTestId("save-server"));
    expect(within(form).getByTestId("server-name-error")).toHaveTextContent("Give the server a name");
    expect(within(form).getByTestId("server-url-input-error")).toHaveTextContent("Enter the server's address");
    expect(within(form).getByTestId("server-name")).toHaveFocus();

    await user.type(within(form).getByTestId("server-name"), "x".repeat(65));
    await user.type(within(form).getByTestId("server-url-input"), "192.168.1.20:8188");
    expect(within(form).getByTestId("server-name-error")).toHaveTextContent("64 characters or fewer");
    expect(within(form).getByTestId("server-url-input-error")).toHaveTextContent("Start the address with http:// or https://");

    await user.click(within(form).getByTestId("save-server"));
    expect(fake.callsTo("servers_add")).toHaveLength(0);
    expect(screen.getByTestId("server-form")).toBeInTheDocument();
  });

  it("shows the message Rust returns on save in form-error and keeps the form open", async () => {
    installFakeBackend({ servers: [server({ name: "GPU box", url: "http://10.0.0.2:8188" })] });
    const { user } = renderApp("servers");
    const form = await openAddForm(user);
    await user.type(within(form).getByTestId("server-name"), "GPU box");
    await user.type(within(form).getByTestId("server-url-input"), "http://10.0.0.9:8188");
    await user.click(within(form).getByTestId("save-server"));
    expect(await within(form).findByTestId("form-error")).toHaveTextContent("A server named 'GPU box' already exists. Choose another name.");
    expect(screen.getByTestId("server-form")).toBeInTheDocument();
  });

  it("adds a server with basic auth, tags and advanced options, then lists it", async () => {
    const fake = installFakeBackend();
    const { user } = renderApp("servers");
    const form = await openAddForm(user);
    await user.type(within(form).getByTestId("server-name"), "  Studio 4090 ");
    await user.type(within(form).getByTestId("server-url-input"), "https://gpu.studio.lan:8188");
    await user.selectOptions(within(form).getByTestId("auth-kind"), "basic");
    await user.type(within(form).getByTestId("auth-user"), "alice");
    await user.type(within(form).getByTestId("auth-secret"), "s3cret");
    await user.type(within(form).getByTestId("server-tags"), "studio, sdxl, , studio");
    await user.click(within(form).getByTestId("advanced-toggle"));
    expect(within(form).getByTestId("server-timeout")).toHaveValue(10);
    await user.clear(within(form).getByTestId("server-timeout"));
    await user.type(within(form).getByTestId("server-timeout"), "30");
    await user.type(within(form).getByTestId("server-max-queue"), "8");
    await user.type(within(form).getByTestId("server-notes"), "Under Sam's desk");
    await user.click(within(form).getByTestId("save-server"));

    await waitFor(() => expect(screen.queryByTestId("server-form")).not.toBeInTheDocument());
    const input = fake.callsTo("servers_add")[0].args.input as ServerInput;
    expect(input).toEqual({
      name: "Studio 4090",
      url: "https://gpu.studio.lan:8188",
      kind: "comfyui",
      runpod: null,
      auth: { kind: "basic", user: "alice", header: null, secret: "s3cret" },
      tags: ["studio", "sdxl"],
      timeout_ms: 30000,
      max_queue: 8,
      notes: "Under Sam's desk",
    });
    const rows = await screen.findAllByTestId("server-row");
    expect(rows.map((r) => r.dataset.serverName)).toEqual(["Studio 4090"]);
  });

  it("Test connection sends the unsaved form and shows status, version, VRAM and latency", async () => {
    const fake = installFakeBackend({}, { servers_test_input: () => connected("unsaved", { latency_ms: 8 }) });
    const { user } = renderApp("servers");
    const form = await openAddForm(user);
    await user.type(within(form).getByTestId("server-url-input"), "http://127.0.0.1:8188");
    await user.click(within(form).getByTestId("test-connection"));

    const result = await within(form).findByTestId("test-result");
    expect(result).toHaveAttribute("data-status", "connected");
    expect(result).toHaveTextContent("Connected");
    expect(result).toHaveTextContent("ComfyUI 0.3.64");
    expect(result).toHaveTextContent("VRAM 20/24 GB free");
    expect(result).toHaveTextContent("8 ms");
    const call = fake.callsTo("servers_test_input")[0].args;
    expect(call.id).toBeNull();
    expect((call.input as ServerInput).url).toBe("http://127.0.0.1:8188");
  });

  it("Test connection shows why a server failed", async () => {
    installFakeBackend({}, {
      servers_test_input: () => failed("unsaved", "auth_failed", "The server refused the token (401). Check the token and try again."),
    });
    const { user } = renderApp("servers");
    const form = await openAddForm(user);
    await user.type(within(form).getByTestId("server-url-input"), "https://comfy.example.com");
    await user.selectOptions(within(form).getByTestId("auth-kind"), "bearer");
    await user.type(within(form).getByTestId("auth-secret"), "wrong");
    await user.click(within(form).getByTestId("test-connection"));
    const result = await within(form).findByTestId("test-result");
    expect(result).toHaveAttribute("data-status", "auth_failed");
    expect(result).toHaveTextContent("Auth failed");
    expect(result).toHaveTextContent("The server refused the token (401).");
  });

  it("Test connection shows a command error's message", async () => {
    installFakeBackend({}, {
      servers_test_input: () => {
        throw uiError("The URL 'http://exa mple' has a space in the host name.", "invalid_url");
      },
    });
    const { user } = renderApp("servers");
    const form = await openAddForm(user);
    await user.type(within(form).getByTestId("server-url-input"), "http://example.com");
    await user.click(within(form).getByTestId("test-connection"));
    expect(await within(form).findByTestId("test-result")).toHaveTextContent("The URL 'http://exa mple' has a space in the host name.");
  });

  it("warns live about credentials over plain HTTP to a LAN host, not to 127.0.0.1", async () => {
    installFakeBackend();
    const { user } = renderApp("servers");
    const form = await openAddForm(user);
    const url = within(form).getByTestId("server-url-input");

    await user.type(url, "http://192.168.1.20:8188");
    expect(within(form).queryByTestId("form-http-warning")).not.toBeInTheDocument();

    await user.selectOptions(within(form).getByTestId("auth-kind"), "basic");
    expect(within(form).getByTestId("form-http-warning")).toHaveTextContent("plain HTTP to 192.168.1.20");

    await user.clear(url);
    await user.type(url, "http://127.0.0.1:8188");
    expect(within(form).queryByTestId("form-http-warning")).not.toBeInTheDocument();

    await user.clear(url);
    await user.type(url, "https://192.168.1.20:8188");
    expect(within(form).queryByTestId("form-http-warning")).not.toBeInTheDocument();
  });

  it("shows the fields each auth kind needs", async () => {
    installFakeBackend();
    const { user } = renderApp("servers");
    const form = await openAddForm(user);
    const kind = within(form).getByTestId("auth-kind");
    expect(within(form).queryByTestId("auth-secret")).not.toBeInTheDocument();

    await user.selectOptions(kind, "api_key");
    expect(within(form).getByTestId("auth-header")).toBeInTheDocument();
    expect(within(form).getByTestId("auth-secret")).toBeInTheDocument();
    expect(within(form).queryByTestId("auth-user")).not.toBeInTheDocument();

    await user.selectOptions(kind, "comfyui_login");
    expect(within(form).queryByTestId("auth-header")).not.toBeInTheDocument();
    expect(form).toHaveTextContent(/the token printed by ComfyUI-Login at startup, sent as Authorization: Bearer/i);
  });

  it("edits a server: the stored secret is kept unless a new one is typed", async () => {
    const gpu = server({
      name: "GPU box",
      url: "https://gpu.lan",
      auth: { kind: "bearer", user: null, header: null },
      has_secret: true,
      tags: ["a", "b"],
      timeout_ms: 15000,
    });
    const fake = installFakeBackend({ servers: [gpu] });
    const { user } = renderApp("servers");
    const r = (await screen.findAllByTestId("server-row"))[0];
    await user.click(within(r).getByTestId("edit-server"));
    const form = await screen.findByTestId("server-form");
    expect(within(form).getByTestId("server-name")).toHaveValue("GPU box");
    expect(within(form).getByTestId("server-tags")).toHaveValue("a, b");
    const secret = within(form).getByTestId("auth-secret");
    expect(secret).toHaveValue("");
    expect(secret).toHaveAttribute("placeholder", "•••• stored in your keychain — leave empty to keep");

    await user.clear(within(form).getByTestId("server-name"));
    await user.type(within(form).getByTestId("server-name"), "GPU box 2");
    await user.click(within(form).getByTestId("save-server"));
    await waitFor(() => expect(screen.queryByTestId("server-form")).not.toBeInTheDocument());

    const update = fake.callsTo("servers_update")[0].args;
    expect(update.id).toBe(gpu.id);
    expect((update.input as ServerInput).auth).toEqual({ kind: "bearer", user: null, header: null, secret: null });
    expect((update.input as ServerInput).timeout_ms).toBe(15000);
    expect(await screen.findByText("GPU box 2")).toBeInTheDocument();
  });
});

describe("Adding a RunPod serverless endpoint", () => {
  it("asks for the endpoint id, GPU class and flavour instead of a URL, and lists it with a cloud badge", async () => {
    const fake = installFakeBackend();
    const { user } = renderApp("servers");
    const form = await openAddForm(user);
    await user.type(within(form).getByTestId("server-name"), "Cloud SDXL");
    await user.click(within(form).getByTestId("server-kind-runpod_serverless"));
    expect(within(form).queryByTestId("server-url-input")).not.toBeInTheDocument();
    expect(within(form).queryByTestId("auth-kind")).not.toBeInTheDocument();
    expect(within(form).getByTestId("endpoint-key-note")).toHaveTextContent("RunPod API key");

    await user.click(within(form).getByTestId("save-server"));
    expect(within(form).getByTestId("endpoint-id-error")).toHaveTextContent("endpoint id");
    expect(fake.callsTo("servers_add")).toHaveLength(0);

    await user.type(within(form).getByTestId("endpoint-id"), "abc123");
    await user.selectOptions(within(form).getByTestId("flavour"), "flux1-schnell");
    await user.click(within(form).getByTestId("save-server"));
    await waitFor(() => expect(fake.callsTo("servers_add")).toHaveLength(1));
    const input = fake.callsTo("servers_add")[0].args.input as ServerInput;
    expect(input.kind).toBe("runpod_serverless");
    expect(input.runpod).toEqual({ endpoint_id: "abc123", gpu_class: "ADA_24", flavour: "flux1-schnell", extra_models: [] });
    expect(input.auth.secret).toBeNull();

    const row = await screen.findByRole("listitem", { name: /Cloud SDXL/ });
    expect(within(row).getByTestId("cloud-badge")).toHaveTextContent("Cloud");
    expect(within(row).getByTestId("server-url")).toHaveTextContent("https://api.runpod.ai/v2/abc123");
    expect(row).toHaveTextContent("RunPod serverless · flux1-schnell on ADA_24");
  });
});
