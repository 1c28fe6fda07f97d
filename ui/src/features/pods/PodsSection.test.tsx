import { act, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { events } from "../../bindings";
import { installFakeBackend, uiError } from "../../test/fakeBackend";
import { DEFAULT_PRESET, fakePods, pod } from "../../test/fakePods";
import { renderApp, renderWithProviders } from "../../test/render";
import { PODS_REFRESH_MS, PodsSection } from "./PodsSection";

async function card(name: string) {
  const cards = await screen.findAllByTestId("pod-card");
  const found = cards.find((c) => c.getAttribute("aria-label") === name);
  if (!found) throw new Error(`no card for ${name}; cards: ${cards.map((c) => c.getAttribute("aria-label")).join(", ")}`);
  return found;
}

function withPods(init: Parameters<typeof fakePods>[0] = {}, handlers: Record<string, (args: Record<string, unknown>) => unknown> = {}) {
  const pods = fakePods(init);
  const fake = installFakeBackend({ runpodKey: { set: true } }, { ...pods.handlers, ...handlers });
  return { pods, fake };
}

describe("RunPod pods on the Servers page", () => {
  it("without a RunPod key says where to add it and asks RunPod nothing", async () => {
    const fake = installFakeBackend();
    renderApp("servers");
    const noKey = await screen.findByTestId("pods-no-key");
    expect(noKey).toHaveTextContent("Add your RunPod API key in Settings → RunPod account");
    expect(screen.getByRole("heading", { name: "RunPod pods" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Create pod" })).not.toBeInTheDocument();
    expect(screen.queryByTestId("idle-settings")).not.toBeInTheDocument();
    expect(fake.callsTo("pods_list")).toHaveLength(0);
    expect(fake.callsTo("pods_idle_get")).toHaveLength(0);
  });

  it("shows each pod's state, GPU, price, uptime and why it stopped, with the actions its state allows", async () => {
    withPods({
      pods: [
        pod({ name: "flux-box", cost_per_hr_micros: 690_000, uptime_secs: 12 * 60 + 5 }),
        pod({ name: "sdxl-box", gpu: "NVIDIA RTX A5000", state: "stopped", status: "EXITED", cost_per_hr_micros: 1_890_000, uptime_secs: null, stopped_reason: "idle for 5 min" }),
        pod({ name: "new-box", state: "starting", status: "RUNNING", uptime_secs: 30 }),
      ],
    });
    renderWithProviders(<PodsSection />);

    const running = await card("flux-box");
    expect(within(running).getByTestId("pod-state")).toHaveTextContent("Running");
    expect(within(running).getByTestId("pod-gpu")).toHaveTextContent("NVIDIA GeForce RTX 4090");
    expect(within(running).getByTestId("pod-price")).toHaveTextContent("$0.69/h");
    expect(within(running).getByTestId("pod-uptime")).toHaveTextContent("Up 12 min");
    expect(within(running).queryByTestId("pod-stopped-reason")).not.toBeInTheDocument();
    expect(within(running).getByRole("button", { name: "Stop" })).toBeEnabled();
    expect(within(running).queryByRole("button", { name: "Start" })).not.toBeInTheDocument();
    expect(within(running).getByRole("button", { name: "Terminate" })).toBeEnabled();

    const stopped = await card("sdxl-box");
    expect(within(stopped).getByTestId("pod-state")).toHaveTextContent("Stopped");
    expect(within(stopped).getByTestId("pod-price")).toHaveTextContent("$1.89/h");
    expect(within(stopped).getByTestId("pod-stopped-reason")).toHaveTextContent("Stopped because idle for 5 min.");
    expect(within(stopped).queryByTestId("pod-uptime")).not.toBeInTheDocument();
    expect(within(stopped).getByRole("button", { name: "Start" })).toBeEnabled();
    expect(within(stopped).queryByRole("button", { name: "Stop" })).not.toBeInTheDocument();
    expect(within(stopped).getByRole("button", { name: "Terminate" })).toBeEnabled();

    expect(within(await card("new-box")).getByTestId("pod-state")).toHaveTextContent("Starting…");
  });

  it("says what to do when there are no pods, with the idle minutes", async () => {
    withPods({ idle: { enabled: true, idle_ms: 7 * 60_000, expensive_threshold_micros_per_hr: 1_000_000, expensive_idle_ms: 120_000 } });
    renderWithProviders(<PodsSection />);
    await waitFor(() =>
      expect(screen.getByTestId("pods-empty")).toHaveTextContent(
        "No pods yet — create one to run ComfyUI on a cloud GPU; it stops itself after 7 idle minutes.",
      ),
    );
    expect(screen.getByRole("button", { name: "Create pod" })).toBeEnabled();
  });

  it("stops a pod and updates its card", async () => {
    const { fake } = withPods({ pods: [pod({ name: "flux-box" })] });
    const { user } = renderWithProviders(<PodsSection />);
    const c = await card("flux-box");
    await user.click(within(c).getByRole("button", { name: "Stop" }));
    await waitFor(() => expect(within(c).getByTestId("pod-state")).toHaveTextContent("Stopped"));
    expect(fake.callsTo("pods_stop").map((x) => x.args)).toEqual([{ podId: "pod-flux-box" }]);
    expect(within(c).getByTestId("pod-stopped-reason")).toHaveTextContent("Stopped because stopped by you.");
    expect(within(c).getByRole("button", { name: "Start" })).toBeEnabled();
  });

  it("shows why an action failed on the card", async () => {
    withPods({ pods: [pod({ name: "flux-box" })] }, {
      pods_stop: () => {
        throw uiError("RunPod did not answer in 30 s. Check your connection and try again.", "runpod.timeout");
      },
    });
    const { user } = renderWithProviders(<PodsSection />);
    const c = await card("flux-box");
    await user.click(within(c).getByRole("button", { name: "Stop" }));
    expect(await within(c).findByTestId("pod-error")).toHaveTextContent("flux-box did not stop. RunPod did not answer in 30 s.");
    expect(within(c).getByTestId("pod-state")).toHaveTextContent("Running");
  });

  it("asks before terminating, says the disk is deleted, and only then terminates", async () => {
    const { fake } = withPods({ pods: [pod({ name: "flux-box" }), pod({ name: "sdxl-box" })] });
    const { user } = renderWithProviders(<PodsSection />);

    await user.click(within(await card("flux-box")).getByRole("button", { name: "Terminate" }));
    const dialog = await screen.findByRole("alertdialog", { name: "Terminate flux-box?" });
    expect(dialog).toHaveTextContent("disk");
    expect(dialog).toHaveTextContent("This cannot be undone.");
    await user.click(within(dialog).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("alertdialog")).not.toBeInTheDocument();
    expect(fake.callsTo("pods_terminate")).toHaveLength(0);

    await user.click(within(await card("flux-box")).getByRole("button", { name: "Terminate" }));
    await user.click(within(await screen.findByRole("alertdialog")).getByRole("button", { name: "Terminate pod" }));
    await waitFor(() => expect(screen.getAllByTestId("pod-card").map((c) => c.getAttribute("aria-label"))).toEqual(["sdxl-box"]));
    expect(fake.callsTo("pods_terminate").map((x) => x.args)).toEqual([{ podId: "pod-flux-box" }]);
    expect(await screen.findByTestId("toast")).toHaveTextContent("Terminated flux-box");
  });

  it("starts a stopped pod, showing the progress messages and seconds while it starts", async () => {
    const { pods, fake } = withPods({ pods: [pod({ name: "sdxl-box", state: "stopped", status: "EXITED", uptime_secs: null, stopped_reason: "idle for 5 min" })] });
    pods.state.hold = true;
    const { user } = renderWithProviders(<PodsSection />);
    const c = await card("sdxl-box");
    await user.click(within(c).getByRole("button", { name: "Start" }));

    expect(await within(c).findByTestId("pod-progress-message")).toHaveTextContent("Waiting for ComfyUI to answer");
    expect(within(c).getByTestId("pod-progress-elapsed")).toHaveTextContent("8 s");
    expect(within(c).getByTestId("pod-state")).toHaveTextContent("Starting…");
    expect(within(c).getByRole("button", { name: "Terminate" })).toBeDisabled();
    expect(fake.callsTo("pods_start")[0].args.podId).toBe("pod-sdxl-box");

    await act(async () => pods.release());
    await waitFor(() => expect(within(c).getByTestId("pod-state")).toHaveTextContent("Running"));
    expect(within(c).queryByTestId("pod-progress")).not.toBeInTheDocument();
    expect(within(c).getByRole("button", { name: "Stop" })).toBeEnabled();
  });

  it("creates a pod from the edited default preset, shows its progress and closes when it is ready", async () => {
    const { pods, fake } = withPods();
    pods.state.hold = true;
    const { user } = renderWithProviders(<PodsSection />);
    await user.click(await screen.findByRole("button", { name: "Create pod" }));

    const dialog = await screen.findByRole("dialog", { name: "Create a RunPod pod" });
    const name = await within(dialog).findByLabelText("Name");
    expect(name).toHaveValue("comfyfleet-comfyui");
    expect(within(dialog).getByLabelText("GPU types")).toHaveValue("NVIDIA GeForce RTX 4090");
    expect(within(dialog).getByLabelText("Cloud")).toHaveValue("SECURE");
    expect(within(dialog).getByLabelText("Container image")).toHaveValue("runpod/worker-comfyui:5.8.0-base");
    expect(within(dialog).getByLabelText("Container disk (GB)")).toHaveValue("30");
    expect(await within(dialog).findByTestId("pod-gpu-prices")).toHaveTextContent("RTX 4090 · 24 GB · $0.69/h");

    // The obvious checks first: nothing is sent.
    await user.clear(name);
    await user.clear(within(dialog).getByLabelText("Container disk (GB)"));
    await user.type(within(dialog).getByLabelText("Container disk (GB)"), "5");
    await user.click(within(dialog).getByRole("button", { name: "Create pod" }));
    expect(within(dialog).getByTestId("pod-name-error")).toHaveTextContent("Give the pod a name.");
    expect(within(dialog).getByTestId("pod-disk-error")).toHaveTextContent("10–500 GB");
    expect(fake.callsTo("pods_create")).toHaveLength(0);

    await user.type(name, "my-flux");
    await user.clear(within(dialog).getByLabelText("GPU types"));
    await user.type(within(dialog).getByLabelText("GPU types"), "NVIDIA RTX A5000, NVIDIA GeForce RTX 4090");
    expect(within(dialog).getByTestId("pod-gpu-prices")).toHaveTextContent("RTX A5000 · 24 GB · not offered in Secure cloud");
    await user.selectOptions(within(dialog).getByLabelText("Cloud"), "COMMUNITY");
    expect(within(dialog).getByTestId("pod-gpu-prices")).toHaveTextContent("RTX A5000 · 24 GB · $0.16/hRTX 4090 · 24 GB · $0.34/h");
    await user.clear(within(dialog).getByLabelText("Container disk (GB)"));
    await user.type(within(dialog).getByLabelText("Container disk (GB)"), "50");
    await user.click(within(dialog).getByRole("button", { name: "Create pod" }));

    await waitFor(() => expect(fake.callsTo("pods_create")).toHaveLength(1));
    expect(fake.callsTo("pods_create")[0].args.preset).toEqual({
      ...DEFAULT_PRESET,
      name: "my-flux",
      gpu_types: ["NVIDIA RTX A5000", "NVIDIA GeForce RTX 4090"],
      cloud_type: "COMMUNITY",
      container_disk_gb: 50,
    });
    expect(await within(dialog).findByTestId("create-progress-message")).toHaveTextContent("Waiting for ComfyUI to answer");
    expect(within(dialog).getByTestId("create-progress-elapsed")).toHaveTextContent("12 s");
    expect(within(dialog).getByLabelText("Name")).toBeDisabled();

    await act(async () => pods.release());
    await waitFor(() => expect(screen.queryByRole("dialog")).not.toBeInTheDocument());
    const created = await card("my-flux");
    expect(within(created).getByTestId("pod-state")).toHaveTextContent("Running");
    expect(within(created).getByTestId("pod-gpu")).toHaveTextContent("NVIDIA RTX A5000");
  });

  it("keeps the create form open with RunPod's message when the create fails", async () => {
    const { pods } = withPods();
    pods.state.hold = true;
    const { user } = renderWithProviders(<PodsSection />);
    await user.click(await screen.findByRole("button", { name: "Create pod" }));
    const dialog = await screen.findByRole("dialog", { name: "Create a RunPod pod" });
    await within(dialog).findByLabelText("Name");
    await user.click(within(dialog).getByRole("button", { name: "Create pod" }));
    await within(dialog).findByTestId("create-progress");
    await act(async () => pods.fail("RunPod has no NVIDIA GeForce RTX 4090 free in Secure cloud now. Add another GPU type or try Community."));
    expect(await within(dialog).findByTestId("create-error")).toHaveTextContent("The pod was not created. RunPod has no NVIDIA GeForce RTX 4090 free");
    expect(within(dialog).getByLabelText("Name")).toBeEnabled();
  });

  it("round-trips the idle settings in minutes and dollars", async () => {
    const { fake } = withPods({ pods: [pod({ name: "flux-box" })] });
    const { user } = renderWithProviders(<PodsSection />);
    const form = await screen.findByRole("form", { name: "Idle auto-stop" });
    const idle = within(form).getByLabelText("Minutes without a job before a pod stops");
    const threshold = within(form).getByLabelText("Price per hour (dollars) from which a pod counts as expensive");
    const expensive = within(form).getByLabelText("Minutes without a job before an expensive pod stops");
    expect(within(form).getByRole("checkbox")).toBeChecked();
    expect(idle).toHaveValue("5");
    expect(threshold).toHaveValue("1.00");
    expect(expensive).toHaveValue("2");

    await user.clear(threshold);
    await user.type(threshold, "abc");
    await user.click(within(form).getByRole("button", { name: "Save" }));
    expect(within(form).getByRole("alert")).toHaveTextContent("price per hour in dollars");
    expect(fake.callsTo("pods_idle_set")).toHaveLength(0);

    await user.clear(idle);
    await user.type(idle, "10");
    await user.clear(threshold);
    await user.type(threshold, "1.5");
    await user.clear(expensive);
    await user.type(expensive, "0.5");
    await user.click(within(form).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(fake.callsTo("pods_idle_set")).toHaveLength(1));
    expect(fake.callsTo("pods_idle_set")[0].args.config).toEqual({
      enabled: true,
      idle_ms: 600_000,
      expensive_threshold_micros_per_hr: 1_500_000,
      expensive_idle_ms: 30_000,
    });
    expect(await within(form).findByTestId("idle-saved")).toHaveTextContent("Saved.");
    expect(threshold).toHaveValue("1.50");

    await user.click(within(form).getByRole("checkbox"));
    await user.click(within(form).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(fake.callsTo("pods_idle_set")).toHaveLength(2));
    expect(fake.callsTo("pods_idle_set")[1].args.config).toMatchObject({ enabled: false, idle_ms: 600_000 });
  });

  it("refreshes when the core says a pod changed, and tells what happened", async () => {
    const { pods } = withPods({ pods: [pod({ name: "flux-box" })] });
    renderWithProviders(<PodsSection />);
    const c = await card("flux-box");
    pods.state.pods = [pod({ name: "flux-box", state: "stopped", status: "EXITED", uptime_secs: null, stopped_reason: "idle for 5 min" })];
    const message = "Stopped flux-box: idle for 5 min.";
    await act(() => events.podsChanged.emit({ pod_id: "pod-flux-box", name: "flux-box", message }));
    await waitFor(() => expect(within(c).getByTestId("pod-state")).toHaveTextContent("Stopped"));
    expect(within(c).getByTestId("pod-stopped-reason")).toHaveTextContent("idle for 5 min");
    expect(await screen.findByTestId("toast")).toHaveTextContent(message);
  });

  it("asks RunPod again every 30 s while shown, and stops when it is gone", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const { pods, fake } = withPods({ pods: [pod({ name: "flux-box" })] });
      const { unmount } = renderWithProviders(<PodsSection />);
      const c = await card("flux-box");
      expect(fake.callsTo("pods_list")).toHaveLength(1);
      pods.state.pods = [pod({ name: "flux-box", uptime_secs: 42 * 60 })];
      await act(() => vi.advanceTimersByTimeAsync(PODS_REFRESH_MS));
      await waitFor(() => expect(within(c).getByTestId("pod-uptime")).toHaveTextContent("Up 42 min"));
      expect(fake.callsTo("pods_list")).toHaveLength(2);
      unmount();
      await act(() => vi.advanceTimersByTimeAsync(2 * PODS_REFRESH_MS));
      expect(fake.callsTo("pods_list")).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it("shows why the pods could not be listed and tries again", async () => {
    let fail = true;
    withPods({}, {
      pods_list: () => {
        if (fail) throw uiError("RunPod refused the API key (401). Set it again in Settings → RunPod account.", "runpod.auth");
        return [pod({ name: "flux-box" })];
      },
    });
    const { user } = renderWithProviders(<PodsSection />);
    const err = await screen.findByTestId("pods-error");
    expect(err).toHaveTextContent("RunPod refused the API key (401).");
    fail = false;
    await user.click(within(err).getByRole("button", { name: "Try again" }));
    expect(await card("flux-box")).toBeInTheDocument();
  });
});
