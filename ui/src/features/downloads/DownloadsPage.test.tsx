import { act, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { DownloadItem } from "../../bindings";
import { download, installFakeBackend, uiError } from "../../test/fakeBackend";
import { renderApp } from "../../test/render";

const T0 = 1_700_000_000_000;
const MB = 1_000_000;
const SHA = "a".repeat(64);

/** Replaces a field's text (pasted: typing 64 characters one by one is slow on a loaded machine). */
async function fill(user: ReturnType<typeof renderApp>["user"], testId: string, text: string) {
  const input = screen.getByTestId(testId);
  await user.clear(input);
  await user.click(input);
  await user.paste(text);
}

function rows() {
  const list = screen.queryByRole("list", { name: "Downloads" });
  return list ? within(list).getAllByTestId("download-row") : [];
}

function row(id: string) {
  const found = rows().find((r) => r.dataset.downloadId === id);
  if (!found) throw new Error(`no row for ${id}`);
  return found;
}

const QUEUE: DownloadItem[] = [
  download({ id: "run", file_name: "sdxl.safetensors", added_ms: T0 + 3 }),
  download({ id: "wait", file_name: "vae.safetensors", state: "queued", downloaded: 0, total: null, bytes_per_sec: 0, eta_secs: null, added_ms: T0 + 2 }),
  download({ id: "hold", file_name: "lora.safetensors", state: "paused", downloaded: 30 * MB, bytes_per_sec: 0, eta_secs: null, added_ms: T0 + 1 }),
  download({
    id: "broke",
    file_name: "flux.safetensors",
    state: "failed",
    bytes_per_sec: 0,
    eta_secs: null,
    added_ms: T0,
    error: {
      code: "downloads.gated",
      message: "This Hugging Face model is gated: open https://huggingface.co/org/flux, sign in and accept its licence, then add your Hugging Face token to ComfyFleet.",
      details: null,
    },
  }),
  download({
    id: "saved:/models/old.ckpt",
    file_name: "old.ckpt",
    dest: "/models/old.ckpt",
    state: "done",
    downloaded: 2_000 * MB,
    total: 2_000 * MB,
    bytes_per_sec: 0,
    eta_secs: null,
    sha256: SHA,
    this_session: false,
    added_ms: T0 - 10_000,
  }),
];

describe("Downloads page", () => {
  it("says what to do when there are no downloads", async () => {
    const fake = installFakeBackend();
    renderApp("downloads");
    expect(await screen.findByTestId("downloads-empty")).toHaveTextContent("Paste a link");
    expect(fake.downloadSubscribers()).toBe(1);
    expect(screen.queryByTestId("nav-downloads-count")).not.toBeInTheDocument();
  });

  it("lists the queue with progress bars, sizes, speed and time left, and the errors", async () => {
    installFakeBackend({ downloads: QUEUE });
    renderApp("downloads");
    await waitFor(() => expect(rows().map((r) => r.dataset.downloadId)).toEqual(["run", "wait", "hold", "broke", "saved:/models/old.ckpt"]));
    expect(screen.getByTestId("downloads-summary")).toHaveTextContent("3 in progress · 2 finished or stopped");
    expect(screen.getByTestId("nav-downloads-count")).toHaveTextContent("3");

    const running = row("run");
    expect(within(running).getByTestId("download-state")).toHaveTextContent("Downloading");
    expect(within(running).getByTestId("download-progress")).toHaveAttribute("aria-valuenow", "25");
    expect(within(running).getByTestId("download-numbers")).toHaveTextContent("12.0 MB of 48.0 MB · 8.0 MB/s · 5 s left");
    expect(within(running).getByTestId("download-pause")).toBeEnabled();
    expect(within(running).getByTestId("download-cancel")).toBeEnabled();

    // Queued with no size yet: an indeterminate bar.
    expect(within(row("wait")).getByTestId("download-progress")).not.toHaveAttribute("aria-valuenow");
    expect(within(row("hold")).getByTestId("download-numbers")).toHaveTextContent("30.0 MB of 48.0 MB");
    expect(within(row("hold")).getByTestId("download-resume")).toBeInTheDocument();
    expect(within(row("hold")).queryByTestId("download-pause")).not.toBeInTheDocument();

    const failed = row("broke");
    expect(within(failed).getByTestId("download-error")).toHaveTextContent("gated");
    expect(within(failed).getByTestId("download-retry")).toBeInTheDocument();
    expect(within(failed).queryByTestId("download-progress")).not.toBeInTheDocument();

    const done = row("saved:/models/old.ckpt");
    expect(within(done).getByTestId("download-numbers")).toHaveTextContent("2.0 GB");
    expect(within(done).getByTestId("download-sha256")).toHaveTextContent(SHA);
    expect(within(done).getByTestId("download-reveal")).toHaveTextContent("Show in folder");
    expect(within(done).queryByTestId("download-cancel")).not.toBeInTheDocument();
  });

  it("moves the progress bar as updates arrive through the channel, then shows the finished file", { timeout: 30_000 }, async () => {
    const fake = installFakeBackend({ downloads: [download({ id: "run", downloaded: 0, total: 40 * MB, bytes_per_sec: 0, eta_secs: null })] });
    const { user } = renderApp("downloads");
    await waitFor(() => expect(rows()).toHaveLength(1));
    expect(within(row("run")).getByTestId("download-progress")).toHaveAttribute("aria-valuenow", "0");

    act(() => fake.pushDownloadUpdate({ kind: "changed", item: download({ id: "run", downloaded: 10 * MB, total: 40 * MB, bytes_per_sec: 5 * MB, eta_secs: 6 }) }));
    await waitFor(() => expect(within(row("run")).getByTestId("download-progress")).toHaveAttribute("aria-valuenow", "25"));
    expect(within(row("run")).getByTestId("download-numbers")).toHaveTextContent("10.0 MB of 40.0 MB · 5.0 MB/s · 6 s left");

    act(() => fake.pushDownloadUpdate({ kind: "changed", item: download({ id: "run", downloaded: 30 * MB, total: 40 * MB, bytes_per_sec: 5 * MB, eta_secs: 125 }) }));
    await waitFor(() => expect(within(row("run")).getByTestId("download-numbers")).toHaveTextContent("2 min 5 s left"));

    act(() =>
      fake.pushDownloadUpdate({
        kind: "changed",
        item: download({ id: "run", state: "done", downloaded: 40 * MB, total: 40 * MB, bytes_per_sec: 0, eta_secs: null, sha256: SHA, detail: "Verified: matches the SHA-256 you gave." }),
      }),
    );
    await waitFor(() => expect(row("run")).toHaveAttribute("data-state", "done"));
    expect(within(row("run")).queryByTestId("download-progress")).not.toBeInTheDocument();
    expect(within(row("run")).getByTestId("download-numbers")).toHaveTextContent("40.0 MB · Verified: matches the SHA-256 you gave.");
    expect(screen.queryByTestId("nav-downloads-count")).not.toBeInTheDocument();

    await user.click(within(row("run")).getByTestId("download-reveal"));
    await waitFor(() => expect(fake.callsTo("open_path")).toHaveLength(1));
    expect(fake.callsTo("open_path")[0].args).toEqual({ path: download({ id: "run" }).dest, reveal: true });
  });

  it("pauses, resumes, cancels and retries through the right commands", { timeout: 30_000 }, async () => {
    const fake = installFakeBackend({ downloads: QUEUE });
    const { user } = renderApp("downloads");
    await waitFor(() => expect(rows()).toHaveLength(5));

    await user.click(within(row("run")).getByTestId("download-pause"));
    await waitFor(() => expect(row("run")).toHaveAttribute("data-state", "paused"));
    expect(fake.callsTo("downloads_pause").map((c) => c.args)).toEqual([{ id: "run" }]);

    await user.click(within(row("run")).getByTestId("download-resume"));
    await waitFor(() => expect(row("run")).toHaveAttribute("data-state", "queued"));
    expect(fake.callsTo("downloads_resume").map((c) => c.args)).toEqual([{ id: "run" }]);

    await user.click(within(row("hold")).getByTestId("download-cancel"));
    await waitFor(() => expect(row("hold")).toHaveAttribute("data-state", "cancelled"));
    expect(fake.callsTo("downloads_cancel").map((c) => c.args)).toEqual([{ id: "hold" }]);

    await user.click(within(row("broke")).getByTestId("download-retry"));
    await waitFor(() => expect(row("broke")).toHaveAttribute("data-state", "queued"));
    expect(fake.callsTo("downloads_retry").map((c) => c.args)).toEqual([{ id: "broke" }]);
    expect(within(row("broke")).queryByTestId("download-error")).not.toBeInTheDocument();
  });

  it("shows why an action failed", async () => {
    installFakeBackend(
      { downloads: [download({ id: "run" })] },
      {
        downloads_pause: () => {
          throw uiError("sdxl.safetensors is finished, so it cannot be paused.", "downloads.not_now");
        },
      },
    );
    const { user } = renderApp("downloads");
    await waitFor(() => expect(rows()).toHaveLength(1));
    await user.click(within(row("run")).getByTestId("download-pause"));
    expect(await screen.findByText("sdxl.safetensors is finished, so it cannot be paused.")).toBeInTheDocument();
    expect(row("run")).toHaveAttribute("data-state", "running");
  });

  it("checks the form before sending, then adds the download", { timeout: 30_000 }, async () => {
    const fake = installFakeBackend();
    const { user } = renderApp("downloads");
    await screen.findByTestId("downloads-empty");

    await user.click(screen.getByTestId("add-download"));
    expect(await screen.findByTestId("download-url-input-error")).toHaveTextContent("Enter the link");
    expect(screen.getByTestId("download-url-input")).toHaveFocus();

    await fill(user, "download-url-input", "ftp://example.com/model.bin");
    await fill(user, "download-dest-input", "models/here");
    await fill(user, "download-sha-input", "abc123");
    await user.click(screen.getByTestId("add-download"));
    expect(screen.getByTestId("download-url-input-error")).toHaveTextContent("Only http:// and https://");
    expect(screen.getByTestId("download-dest-input-error")).toHaveTextContent("full path");
    expect(screen.getByTestId("download-sha-input-error")).toHaveTextContent("64 hexadecimal digits");
    expect(fake.callsTo("downloads_add")).toHaveLength(0);

    await fill(user, "download-url-input", "https://huggingface.co/org/repo/resolve/main/model.safetensors");
    await fill(user, "download-dest-input", "/data/models/");
    await fill(user, "download-sha-input", `sha256:${SHA}`);
    await user.click(screen.getByTestId("add-download"));

    await waitFor(() => expect(fake.callsTo("downloads_add")).toHaveLength(1));
    expect(fake.callsTo("downloads_add")[0].args).toEqual({
      input: { url: "https://huggingface.co/org/repo/resolve/main/model.safetensors", destination: "/data/models/", sha256: `sha256:${SHA}` },
    });
    await waitFor(() => expect(rows()).toHaveLength(1));
    expect(rows()[0]).toHaveAttribute("data-state", "queued");
    expect(within(rows()[0]).getByTestId("download-dest")).toHaveTextContent("/data/models/model.safetensors");
    expect(screen.getByTestId("download-url-input")).toHaveValue("");
  });

  it("puts an error from the core next to its field", { timeout: 30_000 }, async () => {
    installFakeBackend(
      {},
      {
        downloads_add: () => {
          throw uiError("Cannot download to /root/x.bin: permission denied.", "downloads.bad_destination");
        },
      },
    );
    const { user } = renderApp("downloads");
    await screen.findByTestId("downloads-empty");
    await fill(user, "download-url-input", "https://example.com/x.bin");
    await fill(user, "download-dest-input", "/root/x.bin");
    await user.click(screen.getByTestId("add-download"));
    expect(await screen.findByTestId("download-dest-input-error")).toHaveTextContent("permission denied");
    expect(screen.getByTestId("download-url-input")).toHaveValue("https://example.com/x.bin");
  });
  it("clears finished and cancelled downloads from the list, keeping what runs, waits or failed", { timeout: 30_000 }, async () => {
    const stopped = download({ id: "stopped", file_name: "clip.safetensors", state: "cancelled", downloaded: 0, bytes_per_sec: 0, eta_secs: null, added_ms: T0 - 1 });
    const fake = installFakeBackend({ downloads: [...QUEUE, stopped] });
    const { user } = renderApp("downloads");
    await waitFor(() => expect(rows()).toHaveLength(6));

    await user.click(screen.getByTestId("downloads-clear-finished"));
    await waitFor(() => expect(rows().map((r) => r.dataset.downloadId)).toEqual(["run", "wait", "hold", "broke"]));
    expect(fake.callsTo("downloads_clear_finished")).toHaveLength(1);
    expect(screen.getByTestId("downloads-summary")).toHaveTextContent("3 in progress · 1 finished or stopped");
    // Nothing left to clear: the button goes away.
    expect(screen.queryByTestId("downloads-clear-finished")).not.toBeInTheDocument();
  });

  it("takes out what another window cleared, as the channel says", async () => {
    const fake = installFakeBackend({ downloads: QUEUE });
    renderApp("downloads");
    await waitFor(() => expect(rows()).toHaveLength(5));
    await waitFor(() => expect(fake.downloadSubscribers()).toBe(1));
    await act(async () => fake.pushDownloadUpdate({ kind: "removed", ids: ["saved:/models/old.ckpt"] }));
    await waitFor(() => expect(rows()).toHaveLength(4));
    expect(rows().some((r) => r.dataset.downloadId === "saved:/models/old.ckpt")).toBe(false);
  });
});
