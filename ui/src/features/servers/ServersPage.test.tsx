import { act, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { events } from "../../bindings";
import { connected, failed, installFakeBackend, server, uiError } from "../../test/fakeBackend";
import { renderApp } from "../../test/render";

const GIB = 1024 ** 3;

async function row(name: string) {
  const rows = await screen.findAllByTestId("server-row");
  const found = rows.find((r) => r.getAttribute("data-server-name") === name);
  if (!found) throw new Error(`no row for ${name}; rows: ${rows.map((r) => r.getAttribute("data-server-name")).join(", ")}`);
  return found;
}

describe("Servers page", () => {
  it("shows the empty state with what to do next when there are no servers", async () => {
    const fake = installFakeBackend();
    const { user } = renderApp("servers");

    const empty = await screen.findByTestId("empty-state");
    expect(empty).toHaveTextContent("No servers yet");
    expect(empty).toHaveTextContent("http://127.0.0.1:8188");
    expect(empty).toHaveTextContent(/import/i);
    expect(screen.queryAllByTestId("server-row")).toHaveLength(0);
    expect(fake.callsTo("servers_list")).toHaveLength(1);
    expect(fake.callsTo("servers_statuses")).toHaveLength(1);

    await user.click(within(empty).getByTestId("empty-add-server"));
    expect(await screen.findByTestId("server-form")).toBeInTheDocument();
    expect(screen.getByTestId("server-name")).toHaveFocus();
  });

  it("shows each server's status, VRAM, queue, version, latency, tags and the active marker", async () => {
    const gpu = server({ name: "GPU box", url: "http://192.168.1.20:8188", active: true, max_queue: 10, tags: ["studio", "24gb"] });
    const laptop = server({ name: "Laptop", url: "http://127.0.0.1:8188" });
    const cloud = server({ name: "Cloud", url: "https://pod.example.com", needs_credentials: true, auth: { kind: "bearer", user: null, header: null } });
    installFakeBackend({
      servers: [gpu, laptop, cloud],
      statuses: [
        connected(gpu.id, { devices: [{ name: "cuda:0", type: "cuda", vram_total: 24 * GIB, vram_free: 20.5 * GIB }], queue: { running: 1, pending: 1 } }),
        failed(laptop.id, "unreachable", "Nothing answers at http://127.0.0.1:8188. Start ComfyUI or check the port."),
      ],
    });
    renderApp("servers");

    const g = await row("GPU box");
    expect(within(g).getByTestId("status-badge")).toHaveTextContent("Connected");
    expect(within(g).getByTestId("status-badge")).toHaveAttribute("data-status", "connected");
    expect(within(g).getByTestId("server-url")).toHaveTextContent("http://192.168.1.20:8188");
    expect(within(g).getByTestId("server-vram")).toHaveTextContent("VRAM 20.5/24 GB free");
    expect(within(g).getByTestId("server-queue")).toHaveTextContent("Queue 2/10");
    expect(within(g).getByTestId("server-version")).toHaveTextContent("ComfyUI 0.3.64");
    expect(within(g).getByTestId("server-latency")).toHaveTextContent("12 ms");
    expect(within(g).getAllByTestId("server-tag").map((t) => t.textContent)).toEqual(["studio", "24gb"]);
    expect(within(g).getByTestId("active-marker")).toHaveTextContent("Active");
    expect(within(g).queryByTestId("activate-server")).not.toBeInTheDocument();

    const l = await row("Laptop");
    expect(within(l).getByTestId("status-badge")).toHaveTextContent("Unreachable");
    expect(within(l).getByTestId("server-error")).toHaveTextContent("Nothing answers at http://127.0.0.1:8188");
    expect(within(l).queryByTestId("active-marker")).not.toBeInTheDocument();
    expect(within(l).getByTestId("activate-server")).toBeEnabled();
    expect(within(l).queryByTestId("server-vram")).not.toBeInTheDocument();

    const c = await row("Cloud");
    expect(within(c).getByTestId("status-badge")).toHaveTextContent("Not tested");
    expect(within(c).getByTestId("needs-credentials")).toBeInTheDocument();

    expect(screen.getByTestId("active-server-status")).toHaveTextContent("Active server: GPU box");
  });

  it("shows the queue without a limit as a bare number, and the saved plain-HTTP warning on the row", async () => {
    const lan = server({
      name: "LAN",
      url: "http://10.0.0.5:8188",
      auth: { kind: "basic", user: "alice", header: null },
      plain_http_warning: "Credentials for 'LAN' go over plain HTTP to 10.0.0.5.",
    });
    installFakeBackend({ servers: [lan], statuses: [connected(lan.id, { queue: { running: 0, pending: 3 } })] });
    renderApp("servers");
    const r = await row("LAN");
    expect(within(r).getByTestId("server-queue")).toHaveTextContent(/^Queue 3$/);
    expect(within(r).getByTestId("plain-http-warning")).toHaveTextContent("plain HTTP to 10.0.0.5");
  });

  it("asks before deleting, names the server, and shows the returned message", async () => {
    const gpu = server({ name: "GPU box", active: true });
    const fake = installFakeBackend({ servers: [gpu, server({ name: "Laptop" })] });
    const { user } = renderApp("servers");

    await user.click(within(await row("GPU box")).getByTestId("delete-server"));
    const dialog = await screen.findByTestId("confirm-delete");
    expect(dialog).toHaveTextContent("GPU box");

    await user.click(within(dialog).getByTestId("confirm-delete-no"));
    expect(screen.queryByTestId("confirm-delete")).not.toBeInTheDocument();
    expect(fake.callsTo("servers_delete")).toHaveLength(0);

    await user.click(within(await row("GPU box")).getByTestId("delete-server"));
    await user.click(within(await screen.findByTestId("confirm-delete")).getByTestId("confirm-delete-yes"));

    const toast = await screen.findByTestId("toast");
    expect(toast).toHaveTextContent("Deleted 'GPU box'. It was the active server; no server is active now.");
    expect(fake.callsTo("servers_delete")[0].args).toEqual({ id: gpu.id });
    await waitFor(() => expect(screen.getAllByTestId("server-row").map((r) => r.dataset.serverName)).toEqual(["Laptop"]));
  });

  it("shows the UiError message when a command fails", async () => {
    const gpu = server({ name: "GPU box" });
    installFakeBackend({ servers: [gpu] }, {
      servers_test: () => {
        throw uiError("Server 'GPU box' refused the token (401). Update its credentials in Servers > Edit.", "auth_failed");
      },
    });
    const { user } = renderApp("servers");
    await user.click(within(await row("GPU box")).getByTestId("test-server"));
    expect(await screen.findByTestId("toast")).toHaveTextContent("Server 'GPU box' refused the token (401). Update its credentials in Servers > Edit.");
  });

  it("shows the load error and retries", async () => {
    let fail = true;
    installFakeBackend({ servers: [server({ name: "GPU box" })] }, {
      servers_list: () => {
        if (fail) throw uiError("The server list in /data/comfyfleet.db could not be read: database is locked.", "store");
        return [server({ name: "GPU box" })];
      },
    });
    const { user } = renderApp("servers");
    const err = await screen.findByTestId("list-error");
    expect(err).toHaveTextContent("database is locked");
    fail = false;
    await user.click(within(err).getByRole("button", { name: "Try again" }));
    expect(await row("GPU box")).toBeInTheDocument();
  });

  it("tests one server and updates its row", async () => {
    const gpu = server({ name: "GPU box" });
    const fake = installFakeBackend({ servers: [gpu] }, { servers_test: () => connected(gpu.id, { latency_ms: 33 }) });
    const { user } = renderApp("servers");
    const r = await row("GPU box");
    expect(within(r).getByTestId("status-badge")).toHaveTextContent("Not tested");
    await user.click(within(r).getByTestId("test-server"));
    await waitFor(() => expect(within(r).getByTestId("status-badge")).toHaveTextContent("Connected"));
    expect(within(r).getByTestId("server-latency")).toHaveTextContent("33 ms");
    expect(fake.callsTo("servers_test")[0].args).toEqual({ id: gpu.id, fresh: true });
  });

  it("tests all servers, showing a spinner while it runs", async () => {
    const a = server({ name: "A" });
    const b = server({ name: "B" });
    let finish: (v: unknown) => void = () => {};
    installFakeBackend({ servers: [a, b] }, {
      servers_test_all: () => new Promise((resolve) => (finish = resolve)),
    });
    const { user } = renderApp("servers");
    await row("A");
    const button = screen.getByTestId("test-all");
    await user.click(button);
    expect(button).toHaveAttribute("aria-busy", "true");
    expect(button.querySelector(".spinner")).not.toBeNull();

    await act(async () => finish([connected(a.id), failed(b.id, "timeout", "No answer from B within 10 s.")]));
    await waitFor(() => expect(button).not.toHaveAttribute("aria-busy"));
    expect(within(await row("A")).getByTestId("status-badge")).toHaveTextContent("Connected");
    expect(within(await row("B")).getByTestId("status-badge")).toHaveTextContent("Timed out");
    expect(within(await row("B")).getByTestId("server-error")).toHaveTextContent("No answer from B within 10 s.");
  });

  it("makes a server active", async () => {
    const fake = installFakeBackend({ servers: [server({ name: "A", active: true }), server({ name: "B" })] });
    const { user } = renderApp("servers");
    await user.click(within(await row("B")).getByTestId("activate-server"));
    await waitFor(() => expect(within(screen.getAllByTestId("server-row")[1]).getByTestId("active-marker")).toBeInTheDocument());
    expect(fake.callsTo("servers_activate")[0].args).toEqual({ id: "id-b" });
    expect(within(await row("A")).queryByTestId("active-marker")).not.toBeInTheDocument();
    expect(screen.getByTestId("active-server-status")).toHaveTextContent("Active server: B");
  });

  it("updates a row when the monitor pushes serverStatusChanged", async () => {
    const gpu = server({ name: "GPU box" });
    installFakeBackend({ servers: [gpu], statuses: [connected(gpu.id, { checked_at_ms: 1000 })] });
    renderApp("servers");
    const r = await row("GPU box");
    expect(within(r).getByTestId("status-badge")).toHaveAttribute("data-status", "connected");

    const pushed = failed(gpu.id, "timeout", "GPU box did not answer within 10 s.", 2000);
    await waitFor(async () => {
      await act(() => events.serverStatusChanged.emit({ server_id: gpu.id, name: gpu.name, previous: "connected", current: pushed, availability_changed: true }));
      expect(within(r).getByTestId("status-badge")).toHaveAttribute("data-status", "timeout");
    });
    expect(within(r).getByTestId("status-badge")).toHaveTextContent("Timed out");
    expect(within(r).getByTestId("server-error")).toHaveTextContent("GPU box did not answer within 10 s.");
  });

  it("refreshes and tells the user when activeServerChanged arrives", async () => {
    const fake = installFakeBackend({ servers: [server({ name: "A", active: true }), server({ name: "B" })] });
    renderApp("servers");
    await row("A");
    fake.state.servers = fake.state.servers.map((s) => ({ ...s, active: s.name === "B" }));
    const message = "'A' stopped answering; switched to 'B'.";
    await waitFor(async () => {
      await act(() => events.activeServerChanged.emit({ server_id: "id-b", name: "B", message }));
      expect(screen.getByTestId("toast")).toHaveTextContent(message);
    });
    await waitFor(() => expect(within(screen.getAllByTestId("server-row")[1]).getByTestId("active-marker")).toBeInTheDocument());
  });

  it("reloads the list when serversChanged arrives", async () => {
    const fake = installFakeBackend({ servers: [server({ name: "A" })] });
    renderApp("servers");
    await row("A");
    fake.state.servers.push(server({ name: "Added by CLI" }));
    await waitFor(async () => {
      await act(() => events.serversChanged.emit({ reason: "added" }));
      expect(screen.getAllByTestId("server-row")).toHaveLength(2);
    });
  });

  it("imports a picked file and shows what was added, skipped and needs credentials", async () => {
    const fake = installFakeBackend();
    fake.state.importReport = {
      added: ["GPU box", "Cloud"],
      skipped: [{ name: "Laptop", reason: "a server with this name already exists" }],
      activated: null,
      needs_credentials: ["Cloud"],
    };
    const { user } = renderApp("servers");
    await screen.findByTestId("empty-state");
    await user.click(screen.getByTestId("import-servers"));

    const report = await screen.findByTestId("import-report");
    expect(fake.callsTo("servers_import")[0].args).toEqual({ path: "/home/artist/servers.json" });
    expect(within(report).getByTestId("import-added")).toHaveTextContent("Added 2 servers");
    expect(within(report).getByTestId("import-added")).toHaveTextContent("GPU box");
    expect(within(report).getByTestId("import-skipped")).toHaveTextContent("Laptop: a server with this name already exists");
    expect(within(report).getByTestId("import-needs-credentials")).toHaveTextContent("Cloud");
  });

  it("does nothing when the import file picker is cancelled", async () => {
    const fake = installFakeBackend();
    fake.state.dialogOpenPath = null;
    const { user } = renderApp("servers");
    await screen.findByTestId("empty-state");
    await user.click(screen.getByTestId("import-servers"));
    await waitFor(() => expect(screen.getByTestId("import-servers")).toBeEnabled());
    expect(fake.callsTo("servers_import")).toHaveLength(0);
    expect(screen.queryByTestId("import-report")).not.toBeInTheDocument();
  });

  it("exports to the picked path and says how many servers went", async () => {
    const fake = installFakeBackend({ servers: [server({ name: "A" }), server({ name: "B" })] });
    const { user } = renderApp("servers");
    await row("A");
    await user.click(screen.getByTestId("export-servers"));
    expect(await screen.findByTestId("toast")).toHaveTextContent("Exported 2 servers to /home/artist/comfyfleet-servers.json");
    expect(fake.callsTo("servers_export")[0].args).toEqual({ path: "/home/artist/comfyfleet-servers.json" });
  });
});
