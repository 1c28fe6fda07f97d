import { useEffect, useState } from "react";
import { commands, type AppFolder, type AppInfo, type Settings } from "../../bindings";
import { Button } from "../../components/Button";
import { Loading } from "../../components/Spinner";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";
import { GatewaySection } from "./GatewaySection";
import { RunpodAccountSection } from "./RunpodAccountSection";
import { TokensSection } from "./TokensSection";

export function SettingsPage() {
  const toast = useToast();
  const [settings, setSettings] = useState<Settings | null>(null);
  const [settingsError, setSettingsError] = useState<string | null>(null);
  const [info, setInfo] = useState<AppInfo | null>(null);
  const [infoError, setInfoError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    let live = true;
    call(commands.settingsGet())
      .then((s) => live && setSettings(s))
      .catch((e) => live && setSettingsError(errorMessage(e)));
    call(commands.appInfo())
      .then((i) => live && setInfo(i))
      .catch((e) => live && setInfoError(errorMessage(e)));
    return () => {
      live = false;
    };
  }, []);

  async function openFolder(folder: AppFolder) {
    try {
      await call(commands.openAppFolder(folder));
    } catch (e) {
      toast.show(errorMessage(e), { kind: "error", title: folder === "logs" ? "Could not open the logs" : "Could not open the data folder" });
    }
  }

  async function setAutoSwitch(on: boolean) {
    if (!settings) return;
    const before = settings;
    setSettings({ ...settings, auto_switch: on });
    setSaving(true);
    try {
      setSettings(await call(commands.settingsSet({ ...before, auto_switch: on })));
    } catch (e) {
      setSettings(before);
      toast.show(errorMessage(e), { kind: "error", title: "The setting was not saved" });
    } finally {
      setSaving(false);
    }
  }

  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1 className="page-title">Settings</h1>
        </div>
      </header>

      <section className="card" aria-labelledby="settings-failover">
        <h2 id="settings-failover" className="card-title">
          Failover
        </h2>
        {settingsError ? (
          <p className="notice notice-bad" role="alert">
            {settingsError}
          </p>
        ) : !settings ? (
          <Loading>Loading settings…</Loading>
        ) : (
          <label className="check-row">
            <input
              type="checkbox"
              data-testid="auto-switch"
              checked={settings.auto_switch}
              disabled={saving}
              aria-describedby="auto-switch-hint"
              onChange={(e) => void setAutoSwitch(e.target.checked)}
            />
            <span>
              <span className="check-label">When the active server stops answering, switch to the next healthy server</span>
              <span id="auto-switch-hint" className="field-hint">
                ComfyFleet checks your servers in the background. With this on, the next connected server in your list
                becomes active and you are told which one.
              </span>
            </span>
          </label>
        )}
      </section>

      <RunpodAccountSection />

      <TokensSection />

      <GatewaySection />

      <section className="card" aria-labelledby="settings-about">
        <h2 id="settings-about" className="card-title">
          About
        </h2>
        {infoError ? (
          <p className="notice notice-bad" role="alert">
            {infoError}
          </p>
        ) : !info ? (
          <Loading>Loading…</Loading>
        ) : (
          <dl className="facts">
            <dt>Version</dt>
            <dd data-testid="app-version">ComfyFleet {info.version}</dd>
            <dt>Data folder</dt>
            <dd>
              <code className="path" data-testid="app-home">
                {info.home}
              </code>
              <span className="field-hint">Set the COMFYFLEET_HOME environment variable to keep the data elsewhere.</span>
            </dd>
          </dl>
        )}
        <div className="button-row">
          <Button size="sm" data-testid="open-home" onClick={() => void openFolder("home")}>
            Open data folder
          </Button>
          <Button size="sm" data-testid="open-logs" onClick={() => void openFolder("logs")} title="A log file per day; attach today's when you report a problem">
            Open logs
          </Button>
        </div>
      </section>
    </div>
  );
}
