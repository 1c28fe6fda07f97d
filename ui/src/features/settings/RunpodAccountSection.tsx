// The RunPod account: set the API key (straight into the OS keychain), test it, remove it. The key is never read
// back; the page only learns whether one is set and what RunPod said of it.
import { useEffect, useState } from "react";
import { commands, type KeyStatus, type KeyTest } from "../../bindings";
import { Badge } from "../../components/Badge";
import { Button } from "../../components/Button";
import { Loading } from "../../components/Spinner";
import { call, errorMessage } from "../../lib/errors";

type Busy = "save" | "test" | "remove" | null;

export function RunpodAccountSection() {
  const [status, setStatus] = useState<KeyStatus | null>(null);
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState<Busy>(null);
  const [error, setError] = useState<string | null>(null);
  const [test, setTest] = useState<KeyTest | null>(null);

  useEffect(() => {
    let live = true;
    call(commands.runpodKeyStatus())
      .then((s) => live && setStatus(s))
      .catch((e) => live && setError(errorMessage(e)));
    return () => {
      live = false;
    };
  }, []);

  async function act(what: Exclude<Busy, null>, run: () => Promise<void>) {
    setBusy(what);
    setError(null);
    try {
      await run();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(null);
    }
  }

  return (
    <section className="card" aria-labelledby="settings-runpod">
      <h2 id="settings-runpod" className="card-title">
        RunPod account
      </h2>
      <p className="field-hint">
        Cloud GPUs on RunPod (serverless endpoints and pods) use your API key. It is kept in your system keychain and only
        sent to RunPod.
      </p>
      {!status && !error ? (
        <Loading>Loading…</Loading>
      ) : (
        <div className="token-row" data-testid="runpod-key" data-set={status?.set ?? false}>
          <div className="token-head">
            <label htmlFor="runpod-key-input" className="check-label">
              API key
            </label>
            <Badge tone={status?.set ? "ok" : "neutral"} data-testid="runpod-key-state">
              {status?.set ? "Set" : "Not set"}
            </Badge>
          </div>
          <form
            className="token-form"
            onSubmit={(e) => {
              e.preventDefault();
              void act("save", async () => {
                setStatus(await call(commands.runpodKeySet(value)));
                setValue("");
                setTest(null);
              });
            }}
          >
            <input
              id="runpod-key-input"
              type="password"
              autoComplete="off"
              spellCheck={false}
              placeholder={status?.set ? "Paste a new key to replace it" : "Paste your RunPod API key"}
              value={value}
              data-testid="runpod-key-input"
              onChange={(e) => setValue(e.target.value)}
            />
            <Button type="submit" size="sm" busy={busy === "save"} disabled={busy !== null || value.trim() === ""} data-testid="runpod-key-save">
              Save
            </Button>
            {status?.set && (
              <>
                <Button
                  size="sm"
                  busy={busy === "test"}
                  disabled={busy !== null}
                  data-testid="runpod-key-test"
                  onClick={() => void act("test", async () => setTest(await call(commands.runpodKeyTest())))}
                >
                  Test
                </Button>
                <Button
                  size="sm"
                  variant="ghost"
                  disabled={busy !== null}
                  data-testid="runpod-key-remove"
                  onClick={() =>
                    void act("remove", async () => {
                      setStatus(await call(commands.runpodKeyRemove()));
                      setTest(null);
                    })
                  }
                >
                  Remove
                </Button>
              </>
            )}
          </form>
          {!status?.set && <p className="field-hint">Create a key in the RunPod console: Settings → API Keys.</p>}
          {test && (
            <p className={`notice ${test.ok ? "notice-ok" : "notice-bad"}`} role="status" data-testid="runpod-key-result" data-ok={test.ok}>
              {test.message} <span className="muted">({test.latency_ms} ms)</span>
            </p>
          )}
          {error && (
            <p className="notice notice-bad" role="alert" data-testid="runpod-key-error">
              {error}
            </p>
          )}
        </div>
      )}
    </section>
  );
}
