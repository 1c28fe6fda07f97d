import { screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { installFakeBackend, uiError } from "../../test/fakeBackend";
import { renderApp } from "../../test/render";

describe("Settings page", () => {
  it("shows the version and data folder, and saves the auto-switch toggle", async () => {
    const fake = installFakeBackend({ settings: { auto_switch: false }, appInfo: { version: "0.4.2", home: "/data/fleet" } });
    const { user } = renderApp();
    await user.click(screen.getByTestId("nav-settings"));

    expect(await screen.findByTestId("app-version")).toHaveTextContent("0.4.2");
    expect(screen.getByTestId("app-home")).toHaveTextContent("/data/fleet");
    const toggle = await screen.findByTestId("auto-switch");
    expect(toggle).not.toBeChecked();
    expect(screen.getByText("When the active server stops answering, switch to the next healthy server")).toBeInTheDocument();

    await user.click(toggle);
    await waitFor(() => expect(fake.callsTo("settings_set")).toHaveLength(1));
    expect(fake.callsTo("settings_set")[0].args).toEqual({ settings: { auto_switch: true } });
    await waitFor(() => expect(toggle).toBeEnabled());
    expect(toggle).toBeChecked();
    expect(fake.state.settings.auto_switch).toBe(true);
  });

  it("puts the toggle back and shows why when saving fails", async () => {
    installFakeBackend({ settings: { auto_switch: true } }, {
      settings_set: () => {
        throw uiError("Settings could not be written to /data/fleet/settings.json: disk full. Free some space and try again.", "io");
      },
    });
    const { user } = renderApp();
    await user.click(screen.getByTestId("nav-settings"));
    const toggle = await screen.findByTestId("auto-switch");
    await user.click(toggle);
    expect(await screen.findByTestId("toast")).toHaveTextContent("disk full. Free some space and try again.");
    await waitFor(() => expect(toggle).toBeEnabled());
    expect(toggle).toBeChecked();
  });
});

describe("Settings: the app's folders", () => {
  it("opens the data folder and the logs in the file manager, and says why when it cannot", async () => {
    const fake = installFakeBackend({ appInfo: { version: "0.4.2", home: "/data/fleet" } });
    const { user } = renderApp("settings");
    await user.click(await screen.findByRole("button", { name: "Open logs" }));
    await user.click(screen.getByRole("button", { name: "Open data folder" }));
    await waitFor(() => expect(fake.callsTo("open_app_folder").map((c) => c.args)).toEqual([{ folder: "logs" }, { folder: "home" }]));
  });

  it("says why a folder could not be opened", async () => {
    installFakeBackend({}, {
      open_app_folder: () => {
        throw uiError("Could not open /data/fleet/logs: no file manager is set up.", "app.open_folder");
      },
    });
    const { user } = renderApp("settings");
    await user.click(await screen.findByRole("button", { name: "Open logs" }));
    const toast = await screen.findByTestId("toast");
    expect(toast).toHaveTextContent("Could not open the logs");
    expect(toast).toHaveTextContent("no file manager is set up");
  });
});

describe("Model host tokens", () => {
  it("saves a token to the keychain without ever showing it, and removes it", async () => {
    const fake = installFakeBackend({ tokensSet: ["civitai"] });
    const { user } = renderApp();
    await user.click(screen.getByTestId("nav-settings"));
    const hf = await screen.findByTestId("token-huggingface");
    expect(within(hf).getByTestId("token-huggingface-state")).toHaveTextContent("Not set");
    expect(within(screen.getByTestId("token-civitai")).getByTestId("token-civitai-state")).toHaveTextContent("Set");
    expect(within(hf).getByTestId("token-huggingface-save")).toBeDisabled();

    const input = within(hf).getByTestId("token-huggingface-input");
    expect(input).toHaveAttribute("type", "password");
    await user.type(input, "hf_secret_value");
    await user.click(within(hf).getByTestId("token-huggingface-save"));
    await waitFor(() => expect(within(hf).getByTestId("token-huggingface-state")).toHaveTextContent("Set"));
    expect(fake.callsTo("tokens_set")[0].args).toEqual({ host: "huggingface", token: "hf_secret_value" });
    expect(input).toHaveValue("");
    expect(document.body.textContent).not.toContain("hf_secret_value");

    await user.click(within(hf).getByTestId("token-huggingface-remove"));
    await waitFor(() => expect(within(hf).getByTestId("token-huggingface-state")).toHaveTextContent("Not set"));
    expect(fake.callsTo("tokens_remove")[0].args).toEqual({ host: "huggingface" });
  });
});

describe("RunPod account", () => {
  it("saves the key without showing it, tests it (refused, then accepted) and removes it", async () => {
    const fake = installFakeBackend();
    const { user } = renderApp();
    await user.click(screen.getByTestId("nav-settings"));
    const section = await screen.findByTestId("runpod-key");
    expect(within(section).getByTestId("runpod-key-state")).toHaveTextContent("Not set");
    expect(within(section).queryByTestId("runpod-key-test")).not.toBeInTheDocument();

    await user.type(within(section).getByTestId("runpod-key-input"), "rpa_WRONG");
    await user.click(within(section).getByTestId("runpod-key-save"));
    await waitFor(() => expect(within(section).getByTestId("runpod-key-state")).toHaveTextContent("Set"));
    await user.click(within(section).getByTestId("runpod-key-test"));
    const refused = await within(section).findByTestId("runpod-key-result");
    expect(refused).toHaveAttribute("data-ok", "false");
    expect(refused).toHaveTextContent("refused the API key (401)");

    await user.type(within(section).getByTestId("runpod-key-input"), "rpa_GOOD");
    await user.click(within(section).getByTestId("runpod-key-save"));
    await waitFor(() => expect(within(section).queryByTestId("runpod-key-result")).not.toBeInTheDocument());
    await user.click(within(section).getByTestId("runpod-key-test"));
    await waitFor(() => expect(within(section).getByTestId("runpod-key-result")).toHaveAttribute("data-ok", "true"));
    expect(fake.callsTo("runpod_key_set").map((c) => c.args)).toEqual([{ key: "rpa_WRONG" }, { key: "rpa_GOOD" }]);
    expect(document.body.textContent).not.toContain("rpa_GOOD");

    await user.click(within(section).getByTestId("runpod-key-remove"));
    await waitFor(() => expect(within(section).getByTestId("runpod-key-state")).toHaveTextContent("Not set"));
  });
});

describe("Settings: share as a ComfyUI server", () => {
  it("starts serving at the address given, warns when it is open to the network, and stops", async () => {
    const fake = installFakeBackend();
    const { user } = renderApp("settings");
    const section = await screen.findByTestId("gateway-settings");
    expect(within(section).getByTestId("gateway-state")).toHaveTextContent("Not serving.");
    await user.click(within(section).getByTestId("gateway-enabled"));
    await user.click(within(section).getByTestId("gateway-save"));
    expect(await within(section).findByTestId("gateway-address")).toHaveTextContent("http://127.0.0.1:8189");
    expect(within(section).queryByTestId("gateway-exposed")).not.toBeInTheDocument();
    expect(fake.callsTo("gateway_set")[0].args).toEqual({ settings: { enabled: true, listen: "127.0.0.1:8189" } });

    const listen = within(section).getByTestId("gateway-listen");
    await user.clear(listen);
    await user.type(listen, "0.0.0.0:8189");
    await user.click(within(section).getByTestId("gateway-save"));
    expect(await within(section).findByTestId("gateway-exposed")).toHaveTextContent("anyone who can reach it can queue jobs");

    await user.click(within(section).getByTestId("gateway-enabled"));
    await user.click(within(section).getByTestId("gateway-save"));
    await waitFor(() => expect(within(section).getByTestId("gateway-state")).toHaveTextContent("Not serving."));
  });

  it("checks the address before sending, and shows why the core refused it", async () => {
    const fake = installFakeBackend({}, {
      gateway_set: () => {
        throw uiError("The gateway could not listen on 127.0.0.1:8188: address in use. Is another program (a ComfyUI?) using that port? Choose another with --listen.", "gateway.listen_failed");
      },
    });
    const { user } = renderApp("settings");
    const section = await screen.findByTestId("gateway-settings");
    const listen = within(section).getByTestId("gateway-listen");
    await user.clear(listen);
    await user.type(listen, "my computer");
    await user.click(within(section).getByTestId("gateway-save"));
    expect(await within(section).findByTestId("gateway-error")).toHaveTextContent("like 127.0.0.1:8189");
    expect(fake.callsTo("gateway_set")).toHaveLength(0);
    await user.clear(listen);
    await user.type(listen, "127.0.0.1:8188");
    await user.click(within(section).getByTestId("gateway-enabled"));
    await user.click(within(section).getByTestId("gateway-save"));
    expect(await within(section).findByTestId("gateway-error")).toHaveTextContent("The gateway was not changed. The gateway could not listen on 127.0.0.1:8188");
    expect(within(section).getByTestId("gateway-state")).toHaveTextContent("Not serving.");
  });

  it("says why it is not serving when the saved address could not be used at start", async () => {
    installFakeBackend({
      gateway: { settings: { enabled: true, listen: "127.0.0.1:8189" }, address: null, exposed: false, error: "The gateway could not listen on 127.0.0.1:8189: address in use." },
    });
    renderApp("settings");
    const state = await screen.findByTestId("gateway-state");
    expect(state).toHaveTextContent("Not serving: The gateway could not listen on 127.0.0.1:8189");
    expect(state).toHaveAttribute("role", "alert");
  });
});
