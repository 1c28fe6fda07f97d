import { screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { installFakeBackend, localStatus, uiError } from "../../test/fakeBackend";
import { renderApp } from "../../test/render";

const STOPPED = localStatus({
  state: "stopped",
  install_path: "/opt/ComfyUI",
  port: 8188,
  log_path: "/home/artist/.local/share/comfyfleet/logs/comfyui.log",
});

describe("Local server card", () => {
  it("offers to install ComfyUI when there is none, and goes to the Install page", async () => {
    installFakeBackend();
    const { user } = renderApp("servers");
    await user.click(await screen.findByTestId("local-install-cta"));
    expect(screen.getByTestId("nav-install")).toHaveAttribute("aria-current", "page");
    expect(screen.queryByTestId("local-card")).not.toBeInTheDocument();
  });

  it("starts and stops the local server through its commands", { timeout: 30_000 }, async () => {
    const fake = installFakeBackend({ local: STOPPED });
    const { user } = renderApp("servers");
    const card = await screen.findByTestId("local-card");
    expect(within(card).getByTestId("local-state")).toHaveTextContent("Stopped");
    expect(within(card).getByTestId("local-stop")).toBeDisabled();
    expect(within(card).getByTestId("local-restart")).toBeDisabled();

    await user.click(within(card).getByTestId("local-start"));
    await waitFor(() => expect(within(card).getByTestId("local-state")).toHaveAttribute("data-state", "running"));
    expect(fake.callsTo("local_start")).toHaveLength(1);
    expect(within(card).getByTestId("local-url")).toHaveTextContent("http://127.0.0.1:8188");
    expect(within(card).getByTestId("local-pid")).toHaveTextContent("PID 4242");
    expect(within(card).getByTestId("local-start")).toBeDisabled();

    await user.click(within(card).getByTestId("local-stop"));
    await waitFor(() => expect(within(card).getByTestId("local-state")).toHaveAttribute("data-state", "stopped"));
    expect(fake.callsTo("local_stop")).toHaveLength(1);

    await user.click(within(card).getByTestId("local-keep-running"));
    await waitFor(() => expect(within(card).getByTestId("local-keep-running")).toBeChecked());
    expect(fake.callsTo("local_set_keep_running")[0].args).toEqual({ keep: true });
  });

  it("shows a crash with its restarts and error, and why an action failed", async () => {
    installFakeBackend(
      {
        local: {
          ...STOPPED,
          state: "crashed",
          restarts: 3,
          last_error: { code: "local.crashed", message: "ComfyUI exited with code 1 three times in a row. Open Logs to see why.", details: null },
        },
      },
      {
        local_start: () => {
          throw uiError("Port 8188 is in use by another program. Stop it or change the port.", "local.port_in_use");
        },
      },
    );
    const { user } = renderApp("servers");
    const card = await screen.findByTestId("local-card");
    expect(within(card).getByTestId("local-restarts")).toHaveTextContent("Restarted 3 times");
    expect(within(card).getByTestId("local-last-error")).toHaveTextContent("exited with code 1");
    await user.click(within(card).getByTestId("local-start"));
    expect(await within(card).findByTestId("local-error")).toHaveTextContent("ComfyUI did not start. Port 8188 is in use");
  });

  it("shows the log's end in the log viewer, refreshes it and opens the file", { timeout: 30_000 }, async () => {
    const fake = installFakeBackend({
      local: { ...STOPPED, state: "running", pid: 99, url: "http://127.0.0.1:8188" },
      localLog: { path: "/logs/comfyui.log", text: "Starting server\nTo see the GUI go to: http://127.0.0.1:8188", truncated: false },
    });
    const { user } = renderApp("servers");
    await user.click(await screen.findByTestId("local-logs"));
    const text = await screen.findByTestId("local-log-text");
    expect(text).toHaveTextContent("To see the GUI go to: http://127.0.0.1:8188");
    expect(fake.callsTo("local_logs")[0].args).toEqual({ lines: 500 });

    fake.state.localLog = { ...fake.state.localLog, text: `${fake.state.localLog.text}\ngot prompt` };
    await user.click(screen.getByTestId("local-log-refresh"));
    await waitFor(() => expect(screen.getByTestId("local-log-text")).toHaveTextContent("got prompt"));

    await user.click(screen.getByTestId("local-log-open"));
    await waitFor(() => expect(fake.callsTo("open_path")).toHaveLength(1));
    expect(fake.callsTo("open_path")[0].args).toEqual({ path: "/logs/comfyui.log", reveal: false });
  });

  it("polls the status while the page is shown", { timeout: 15_000 }, async () => {
    const fake = installFakeBackend({ local: STOPPED });
    renderApp("servers");
    await screen.findByTestId("local-card");
    fake.state.local = { ...STOPPED, state: "running", pid: 7, url: "http://127.0.0.1:8188" };
    await waitFor(() => expect(screen.getByTestId("local-state")).toHaveAttribute("data-state", "running"), { timeout: 4000 });
    expect(fake.callsTo("local_status").length).toBeGreaterThanOrEqual(2);
  });

  it("repairs from the card and shows its progress on the Install page", async () => {
    const fake = installFakeBackend({ local: STOPPED });
    const { user } = renderApp("servers");
    const card = await screen.findByTestId("local-card");
    await user.click(within(card).getByTestId("local-repair"));
    await waitFor(() => expect(screen.getByTestId("nav-install")).toHaveAttribute("aria-current", "page"));
    expect(fake.callsTo("install_repair")[0].args).toEqual({ installPath: "/opt/ComfyUI" });
    expect(await screen.findByTestId("install-step-models:sd15")).toHaveAttribute("data-state", "running");
  });

  it("uninstalls after asking, with shared models kept unless ticked", async () => {
    const fake = installFakeBackend({ local: STOPPED });
    const { user } = renderApp("servers");
    const card = await screen.findByTestId("local-card");
    await user.click(within(card).getByTestId("local-uninstall"));
    const dialog = await screen.findByTestId("local-uninstall-confirm");
    await user.click(within(dialog).getByTestId("local-uninstall-confirm-no"));
    expect(fake.callsTo("install_uninstall")).toHaveLength(0);
    await user.click(within(card).getByTestId("local-uninstall"));
    await user.click(await screen.findByTestId("local-uninstall-models"));
    await user.click(screen.getByTestId("local-uninstall-confirm-yes"));
    await screen.findByTestId("local-install-cta");
    expect(fake.callsTo("install_uninstall")[0].args).toEqual({ installPath: "/opt/ComfyUI", removeModels: true });
  });
});
