import { act, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { InstallRequest } from "../../bindings";
import { installCheckFor, installFakeBackend, installStatus, stepStatus } from "../../test/fakeBackend";
import { renderApp } from "../../test/render";

const MB = 1_000_000;
const HOME_PATH = "/home/artist/.local/share/comfyfleet/ComfyUI";

function lastCheck(fake: ReturnType<typeof installFakeBackend>): InstallRequest {
  const calls = fake.callsTo("install_check");
  return calls[calls.length - 1].args.request as InstallRequest;
}

const RUNNING = installStatus({
  state: "running",
  install_path: "/opt/ComfyUI",
  elapsed_ms: 65_000,
  steps: [
    stepStatus({ id: "uv", title: "Download uv", state: "skipped", detail: "Done by an earlier install." }),
    stepStatus({ id: "venv", title: "Create the Python environment", state: "running", detail: "Installing torch…" }),
    stepStatus({ id: "models:sd15", title: "Download Stable Diffusion 1.5", total_bytes: 2_000 * MB }),
  ],
});

describe("Install page — check", () => {
  it("shows the machine, the checks and the plan, and checks again when a pack is toggled", { timeout: 30_000 }, async () => {
    const fake = installFakeBackend({
      installCheck: (request) => {
        const check = installCheckFor(request);
        return {
          ...check,
          checks: [...check.checks, { id: "python", label: "Python", level: "warn", detail: "uv will fetch Python 3.12." }],
          plan: check.plan && { ...check.plan, warnings: ["FLUX needs 24 GB of VRAM."] },
        };
      },
    });
    const { user } = renderApp("install");

    expect(await screen.findByTestId("install-plan")).toHaveAttribute("data-variant", "cuda128");
    expect(fake.installSubscribers()).toBe(1);
    expect(screen.getByTestId("install-path")).toHaveValue(HOME_PATH);
    expect(screen.getByTestId("install-port")).toHaveValue("8188");
    expect(screen.getByTestId("install-gpu")).toHaveTextContent("NVIDIA GeForce RTX 4090 · 24 GB VRAM");
    expect(screen.getByTestId("install-check-gpu")).toHaveAttribute("data-level", "pass");
    expect(screen.getByTestId("install-check-python")).toHaveAttribute("data-level", "warn");
    expect(screen.getByTestId("install-check-python")).toHaveTextContent("uv will fetch Python 3.12.");
    expect(screen.getByTestId("install-recommendation")).toHaveAttribute("data-recommendation", "local");
    expect(screen.getByTestId("install-plan-step-models:sd15")).toHaveTextContent("2.1 GB download");
    expect(screen.getByTestId("install-plan-time")).toHaveTextContent("about 15 min");
    expect(screen.getByTestId("install-plan-warnings")).toHaveTextContent("FLUX needs 24 GB of VRAM.");
    expect(screen.getByTestId("install-pack-sd15")).toBeChecked();
    expect(screen.getByTestId("install-pack-flux-dev").closest("label")).toHaveTextContent("gated");
    expect(screen.getByTestId("install-start")).toBeEnabled();
    expect(lastCheck(fake)).toEqual({ install_path: HOME_PATH, variant: null, packs: ["sd15"], models_dir: null, manifest: null, port: 8188 });

    const before = fake.callsTo("install_check").length;
    await user.click(screen.getByTestId("install-pack-sdxl"));
    await waitFor(() => expect(screen.getByTestId("install-plan-step-models:sdxl")).toBeInTheDocument());
    expect(fake.callsTo("install_check").length).toBe(before + 1);
    expect(lastCheck(fake).packs).toEqual(["sd15", "sdxl"]);

    await user.selectOptions(screen.getByTestId("install-variant"), "rocm");
    await waitFor(() => expect(lastCheck(fake).variant).toBe("rocm"));
  });

  it("takes the install folder from the folder picker and drops packs the manifest does not offer", { timeout: 30_000 }, async () => {
    const fake = installFakeBackend({ installCheck: (request) => ({ ...installCheckFor(request), packs: installCheckFor(request).packs.filter((p) => p.id !== "sd15") }) });
    fake.state.dialogOpenPath = "/data/ComfyUI";
    const { user } = renderApp("install");
    await screen.findByTestId("install-plan");
    await waitFor(() => expect(lastCheck(fake).packs).toEqual([]));
    await user.click(screen.getByTestId("install-path-browse"));
    await waitFor(() => expect(screen.getByTestId("install-path")).toHaveValue("/data/ComfyUI"));
    await waitFor(() => expect(lastCheck(fake).install_path).toBe("/data/ComfyUI"));
    expect(fake.callsTo("plugin:dialog|open")[0].args).toMatchObject({ options: { directory: true } });
  });

  it("says why there is no plan and keeps Install disabled", async () => {
    installFakeBackend({
      installCheck: (request) => ({
        ...installCheckFor(request),
        plan: null,
        plan_error: {
          code: "installer.disk_short",
          message: "Not enough disk space at /opt/ComfyUI: the install needs 11.2 GB and 3.0 GB are free. Free some space or choose another folder.",
          details: null,
        },
      }),
    });
    renderApp("install");
    expect(await screen.findByTestId("install-plan-error")).toHaveTextContent("Not enough disk space");
    expect(screen.queryByTestId("install-plan")).not.toBeInTheDocument();
    expect(screen.getByTestId("install-start")).toBeDisabled();
  });

  it("says an earlier install will be continued, and a cloud recommendation does not block", async () => {
    installFakeBackend({
      installCheck: (request) => {
        const check = installCheckFor(request);
        return {
          ...check,
          done_steps: ["uv", "comfyui"],
          plan: check.plan && { ...check.plan, recommendation: "cloud", recommendation_reason: "No GPU was found; images would take minutes each." },
        };
      },
    });
    renderApp("install");
    expect(await screen.findByTestId("install-done-steps")).toHaveTextContent("An earlier install here is 2 steps along; Install continues it.");
    expect(screen.getByTestId("install-recommendation")).toHaveTextContent("No GPU was found");
    expect(screen.getByTestId("install-start")).toBeEnabled();
  });
});

describe("Install page — installing", () => {
  it("starts the install, then follows the steps through the channel", { timeout: 30_000 }, async () => {
    const fake = installFakeBackend();
    const { user } = renderApp("install");
    await screen.findByTestId("install-plan");
    await waitFor(() => expect(screen.getByTestId("install-start")).toBeEnabled());
    await user.click(screen.getByTestId("install-start"));

    await screen.findByTestId("install-progress");
    expect(fake.callsTo("install_start")[0].args.request).toMatchObject({ install_path: HOME_PATH, packs: ["sd15"] });
    expect(screen.getByTestId("install-step-uv")).toHaveAttribute("data-state", "running");
    expect(screen.getByTestId("install-step-models:sd15")).toHaveAttribute("data-state", "pending");
    expect(screen.getByTestId("nav-install-running")).toBeInTheDocument();

    act(() => {
      fake.pushInstallStatus({
        ...RUNNING,
        steps: [
          RUNNING.steps[0],
          stepStatus({ id: "venv", title: "Create the Python environment", state: "done" }),
          stepStatus({ id: "models:sd15", title: "Download Stable Diffusion 1.5", state: "running", done_bytes: 500 * MB, total_bytes: 2_000 * MB, bytes_per_sec: 10 * MB, eta_secs: 150 }),
        ],
      });
    });
    const models = screen.getByTestId("install-step-models:sd15");
    await waitFor(() => expect(models).toHaveAttribute("data-state", "running"));
    expect(within(models).getByTestId("install-step-progress")).toHaveAttribute("aria-valuenow", "25");
    expect(within(models).getByTestId("install-step-numbers")).toHaveTextContent("500.0 MB of 2.0 GB · 10.0 MB/s · 2 min 30 s left");
    expect(screen.getByTestId("install-step-uv")).toHaveAttribute("data-state", "skipped");
    expect(screen.getByTestId("install-step-uv")).toHaveTextContent("Already done");
    expect(screen.getByTestId("install-elapsed")).toHaveTextContent("1 min 5 s elapsed");

    await user.click(screen.getByTestId("install-pause"));
    await waitFor(() => expect(screen.getByTestId("install-progress")).toHaveAttribute("data-state", "paused"));
    expect(fake.callsTo("install_pause")).toHaveLength(1);
    await user.click(screen.getByTestId("install-resume"));
    await waitFor(() => expect(screen.getByTestId("install-progress")).toHaveAttribute("data-state", "running"));
    expect(fake.callsTo("install_resume")).toHaveLength(1);

    await user.click(screen.getByTestId("install-cancel"));
    expect(await screen.findByTestId("install-check-screen")).toHaveTextContent("The last install was cancelled");
  });

  it("opens on the steps of an install under way", async () => {
    installFakeBackend({ install: RUNNING });
    renderApp("install");
    expect(await screen.findByTestId("install-step-venv")).toHaveAttribute("data-state", "running");
    expect(screen.getByTestId("install-step-venv")).toHaveTextContent("Installing torch…");
    expect(screen.getByTestId("install-pause")).toBeEnabled();
    expect(screen.queryByTestId("install-resume")).not.toBeInTheDocument();
  });

  it("shows a failure with its details, Retry resumes and Open log opens the log", { timeout: 30_000 }, async () => {
    const fake = installFakeBackend({
      install: {
        ...RUNNING,
        state: "failed",
        steps: [RUNNING.steps[0], { ...RUNNING.steps[1], state: "failed", detail: "uv pip install torch exited with 1" }, RUNNING.steps[2]],
        error: {
          code: "installer.step_failed",
          message: "Installing PyTorch failed: no space left on /opt. Free some space, then Retry.",
          details: "error: failed to write torch/lib/libtorch_cuda.so: No space left on device",
        },
      },
    });
    const { user } = renderApp("install");
    const error = await screen.findByTestId("install-error");
    expect(error).toHaveTextContent("Installing PyTorch failed");
    expect(within(error).getByText("Details")).toBeInTheDocument();
    expect(error).toHaveTextContent("No space left on device");
    expect(screen.getByTestId("install-step-venv")).toHaveAttribute("data-state", "failed");

    await user.click(screen.getByTestId("install-open-log"));
    await waitFor(() => expect(fake.callsTo("open_path")).toHaveLength(1));
    expect(fake.callsTo("open_path")[0].args).toEqual({ path: RUNNING.log_path, reveal: false });

    await user.click(screen.getByTestId("install-retry"));
    await waitFor(() => expect(fake.callsTo("install_resume")).toHaveLength(1));
    await waitFor(() => expect(screen.queryByTestId("install-error")).not.toBeInTheDocument());
    expect(screen.getByTestId("install-step-venv")).toHaveAttribute("data-state", "running");
  });

  it("shows the finished install and goes on to Generate", async () => {
    installFakeBackend({ install: { ...RUNNING, state: "done", url: "http://127.0.0.1:8188", server_id: "local", steps: [] } });
    const { user } = renderApp("install");
    expect(await screen.findByTestId("install-done")).toHaveTextContent("added as the active Local server");
    expect(screen.getByTestId("install-done-url")).toHaveTextContent("http://127.0.0.1:8188");
    await user.click(screen.getByTestId("install-go-generate"));
    expect(screen.getByTestId("nav-generate")).toHaveAttribute("aria-current", "page");
  });

  it("moves to the success screen when the channel says done, and reloads the servers", async () => {
    const fake = installFakeBackend({ install: RUNNING });
    renderApp("install");
    await screen.findByTestId("install-step-venv");
    const listed = fake.callsTo("servers_list").length;
    act(() => {
      fake.pushInstallStatus({ ...RUNNING, state: "done", url: "http://127.0.0.1:8190", steps: RUNNING.steps.map((s) => ({ ...s, state: "done" })) });
    });
    expect(await screen.findByTestId("install-done-url")).toHaveTextContent("http://127.0.0.1:8190");
    await waitFor(() => expect(fake.callsTo("servers_list").length).toBe(listed + 1));
  });
});
