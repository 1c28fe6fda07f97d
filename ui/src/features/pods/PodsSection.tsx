// The RunPod pods the app created, on the Servers page: one card per pod (state, GPU, uptime, price, why it stopped),
// Start/Stop/Terminate, "Create pod", and the idle auto-stop settings. Kept fresh by the `podsChanged` event and a
// 30 s poll; create/start progress comes through a Channel per operation.
import { Channel } from "@tauri-apps/api/core";
import { useCallback, useEffect, useRef, useState } from "react";
import { commands, events, type FleetPod, type IdleConfig, type PodPreset, type PodProgress } from "../../bindings";
import { Badge } from "../../components/Badge";
import { Button } from "../../components/Button";
import { ConfirmDialog } from "../../components/ConfirmDialog";
import { Loading } from "../../components/Spinner";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";
import { useServers } from "../servers/ServersContext";
import { CreatePodDialog } from "./CreatePodDialog";
import { IdleSettings } from "./IdleSettings";
import { OperationProgress, useNow, type CreateOperation, type PodOperation } from "./OperationProgress";
import { formatPricePerHour, formatUptime, fullIdleConfig, minutesText, podActions, podStateTone, POD_STATE_LABELS } from "./podFormat";

export const PODS_REFRESH_MS = 30_000;

type CardOp = { kind: "start" | "stop" | "terminate" } & PodOperation;

/** `onGoToSettings` opens Settings (where the RunPod key is set); without it the section names the place. */
export function PodsSection({ onGoToSettings }: { onGoToSettings?: () => void } = {}) {
  const toast = useToast();
  const { refresh: refreshServers } = useServers();
  const [keySet, setKeySet] = useState<boolean | null>(null);
  const [pods, setPods] = useState<FleetPod[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [idle, setIdle] = useState<IdleConfig | null>(null);
  const [idleError, setIdleError] = useState<string | null>(null);
  const [ops, setOps] = useState<Record<string, CardOp>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [toTerminate, setToTerminate] = useState<FleetPod | null>(null);
  const [creating, setCreating] = useState<CreateOperation | null>(null);
  const [dialogOpen, setDialogOpen] = useState(false);
  const mounted = useRef(true);
  /** Bumped when an action changes a pod, so a list asked for before it does not overwrite the newer card. */
  const epoch = useRef(0);

  const refresh = useCallback(async () => {
    const mine = epoch.current;
    try {
      const key = await call(commands.runpodKeyStatus());
      if (!mounted.current) return;
      setKeySet(key.set);
      if (!key.set) {
        setPods([]);
        setLoadError(null);
        return;
      }
      const list = await call(commands.podsList());
      if (!mounted.current || epoch.current !== mine) return;
      setPods(list);
      setLoadError(null);
    } catch (e) {
      if (mounted.current) setLoadError(errorMessage(e));
    }
  }, []);

  const loadIdle = useCallback(async () => {
    try {
      const config = await call(commands.podsIdleGet());
      if (mounted.current) {
        setIdle(config);
        setIdleError(null);
      }
    } catch (e) {
      if (mounted.current) setIdleError(errorMessage(e));
    }
  }, []);

  useEffect(() => {
    mounted.current = true;
    void refresh();
    const timer = setInterval(() => void refresh(), PODS_REFRESH_MS);
    const subscription = events.podsChanged
      .listen((e) => {
        toast.show(e.payload.message, { title: e.payload.name });
        void refresh();
      })
      .catch(() => null);
    return () => {
      mounted.current = false;
      clearInterval(timer);
      subscription.then((unlisten) => unlisten?.()).catch(() => undefined);
    };
  }, [refresh, toast]);

  useEffect(() => {
    if (keySet) void loadIdle();
  }, [keySet, loadIdle]);

  const now = useNow(Object.values(ops).some((o) => o.kind === "start") || (creating !== null && !creating.done));

  function upsert(pod: FleetPod) {
    epoch.current += 1;
    setPods((list) => {
      const current = list ?? [];
      return current.some((p) => p.pod_id === pod.pod_id) ? current.map((p) => (p.pod_id === pod.pod_id ? pod : p)) : [...current, pod];
    });
  }

  function setOp(podId: string, op: CardOp | null) {
    setOps((all) => {
      const next = { ...all };
      if (op) next[podId] = op;
      else delete next[podId];
      return next;
    });
  }

  function setError(podId: string, message: string | null) {
    setErrors((all) => {
      const next = { ...all };
      if (message) next[podId] = message;
      else delete next[podId];
      return next;
    });
  }

  async function start(pod: FleetPod) {
    setError(pod.pod_id, null);
    setOp(pod.pod_id, { kind: "start", progress: null, startedMs: Date.now() });
    const channel = new Channel<PodProgress>((progress) =>
      setOps((all) => (all[pod.pod_id] ? { ...all, [pod.pod_id]: { ...all[pod.pod_id], progress } } : all)),
    );
    try {
      upsert(await call(commands.podsStart(pod.pod_id, channel)));
      void refreshServers();
    } catch (e) {
      setError(pod.pod_id, `${pod.name} did not start. ${errorMessage(e)}`);
      void refresh();
    } finally {
      setOp(pod.pod_id, null);
    }
  }

  async function stop(pod: FleetPod) {
    setError(pod.pod_id, null);
    setOp(pod.pod_id, { kind: "stop", progress: null, startedMs: Date.now() });
    try {
      upsert(await call(commands.podsStop(pod.pod_id)));
    } catch (e) {
      setError(pod.pod_id, `${pod.name} did not stop. ${errorMessage(e)}`);
    } finally {
      setOp(pod.pod_id, null);
    }
  }

  async function terminate(pod: FleetPod) {
    setError(pod.pod_id, null);
    setOp(pod.pod_id, { kind: "terminate", progress: null, startedMs: Date.now() });
    try {
      await call(commands.podsTerminate(pod.pod_id));
      epoch.current += 1;
      setPods((list) => (list ?? []).filter((p) => p.pod_id !== pod.pod_id));
      toast.show(`Terminated ${pod.name}; its disk is deleted and it left the server list.`, { kind: "success" });
      void refreshServers();
    } catch (e) {
      setError(pod.pod_id, `${pod.name} was not terminated. ${errorMessage(e)}`);
    } finally {
      setToTerminate(null);
      setOp(pod.pod_id, null);
    }
  }

  async function create(preset: PodPreset) {
    setCreating({ name: preset.name, progress: null, startedMs: Date.now(), error: null, done: false });
    const channel = new Channel<PodProgress>((progress) => setCreating((c) => (c && !c.done ? { ...c, progress } : c)));
    try {
      const pod = await call(commands.podsCreate(preset, channel));
      upsert(pod);
      setCreating(null);
      setDialogOpen(false);
      toast.show(`${pod.name} is ready: its ComfyUI is in your server list.`, { kind: "success" });
      void refreshServers();
    } catch (e) {
      setCreating((c) => c && { ...c, error: errorMessage(e), done: true });
      void refresh();
    }
  }

  const creatingHidden = creating !== null && !dialogOpen;

  return (
    <section className="section pods-section" aria-labelledby="pods-title" data-testid="pods-section">
      <header className="section-header">
        <h2 id="pods-title" className="section-title">
          RunPod pods
          {pods && pods.length > 0 && <span className="section-count">{pods.length}</span>}
        </h2>
        {keySet && (
          <Button variant="primary" data-testid="create-pod" onClick={() => setDialogOpen(true)} disabled={creating !== null && !creating.done}>
            Create pod
          </Button>
        )}
      </header>

      {keySet === false ? (
        <div className="card pods-no-key" data-testid="pods-no-key">
          <p>
            ComfyFleet can run ComfyUI on a cloud GPU for you. Add your RunPod API key in <strong>Settings → RunPod account</strong>{" "}
            to create pods here.
          </p>
          {onGoToSettings && (
            <Button size="sm" data-testid="pods-go-to-settings" onClick={onGoToSettings}>
              Open Settings
            </Button>
          )}
        </div>
      ) : loadError && pods === null ? (
        <div className="notice notice-bad list-error" role="alert" data-testid="pods-error">
          <p>
            <strong>The pods could not be listed.</strong> {loadError}
          </p>
          <Button size="sm" onClick={() => void refresh()}>
            Try again
          </Button>
        </div>
      ) : keySet === null || pods === null ? (
        <Loading>Loading pods…</Loading>
      ) : (
        <>
          {loadError && (
            <p className="notice notice-warn" role="alert" data-testid="pods-error">
              The pods could not be refreshed: {loadError}
            </p>
          )}
          {creatingHidden && creating && <CreatingLine op={creating} now={now} onShow={() => setDialogOpen(true)} onDismiss={() => setCreating(null)} />}
          {pods.length === 0 && !creating ? (
            <div className="card pods-empty" data-testid="pods-empty">
              <p>
                No pods yet — create one to run ComfyUI on a cloud GPU; it stops itself after{" "}
                {idle ? `${minutesText(fullIdleConfig(idle).idle_ms)} idle minutes` : "a few idle minutes"}.
              </p>
            </div>
          ) : (
            pods.length > 0 && (
              <ul className="server-list pod-list" aria-label="RunPod pods">
                {pods.map((pod) => (
                  <PodCard
                    key={pod.pod_id}
                    pod={pod}
                    op={ops[pod.pod_id] ?? null}
                    error={errors[pod.pod_id] ?? null}
                    now={now}
                    onStart={start}
                    onStop={stop}
                    onTerminate={setToTerminate}
                  />
                ))}
              </ul>
            )
          )}
          {idleError ? (
            <p className="notice notice-bad" role="alert" data-testid="idle-error">
              The idle auto-stop settings could not be read. {idleError}
            </p>
          ) : (
            idle && <IdleSettings config={idle} onSaved={setIdle} />
          )}
        </>
      )}

      {dialogOpen && (
        <CreatePodDialog
          creating={creating}
          now={now}
          onCreate={create}
          onClose={() => {
            setDialogOpen(false);
            if (creating?.done) setCreating(null);
          }}
        />
      )}

      {toTerminate && (
        <ConfirmDialog
          testId="confirm-terminate"
          title={`Terminate ${toTerminate.name}?`}
          confirmLabel="Terminate pod"
          danger
          busy={ops[toTerminate.pod_id]?.kind === "terminate"}
          onConfirm={() => void terminate(toTerminate)}
          onCancel={() => ops[toTerminate.pod_id]?.kind !== "terminate" && setToTerminate(null)}
        >
          <p>
            RunPod deletes <strong>{toTerminate.name}</strong> and its disk: models and images saved on the pod are lost, and
            its server leaves your list. This cannot be undone.
          </p>
          <p className="muted">To only stop paying for the GPU and keep the disk, use Stop instead.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}

type CardProps = {
  pod: FleetPod;
  op: CardOp | null;
  error: string | null;
  now: number;
  onStart: (pod: FleetPod) => void;
  onStop: (pod: FleetPod) => void;
  onTerminate: (pod: FleetPod) => void;
};

function PodCard({ pod, op, error, now, onStart, onStop, onTerminate }: CardProps) {
  const state = op?.kind === "start" ? "starting" : pod.state;
  const can = podActions(pod.state);
  const busy = op !== null;
  return (
    <li className="server-row pod-card" data-testid="pod-card" data-pod-id={pod.pod_id} data-state={state} aria-label={pod.name}>
      <div className="row-main">
        <div className="row-title">
          <Badge tone={podStateTone(state)} dot className="status-badge" data-testid="pod-state" data-state={state}>
            {POD_STATE_LABELS[state]}
          </Badge>
          <h3 className="server-name">{pod.name}</h3>
        </div>
        <div className="row-metrics">
          <span className="metric" data-testid="pod-gpu">
            {pod.gpu}
          </span>
          <span className="metric" data-testid="pod-price">
            {formatPricePerHour(pod.cost_per_hr_micros)}
          </span>
          {pod.uptime_secs != null && state === "running" && (
            <span className="metric" data-testid="pod-uptime">
              Up {formatUptime(pod.uptime_secs)}
            </span>
          )}
          {pod.status && (
            <span className="metric muted" title="The pod's status at RunPod">
              RunPod: {pod.status}
            </span>
          )}
        </div>
        {state === "running" && pod.url && (
          <span className="server-url" data-testid="pod-url">
            {pod.url}
          </span>
        )}
        {pod.state === "stopped" && pod.stopped_reason && (
          <p className="muted pod-reason" data-testid="pod-stopped-reason">
            Stopped because {pod.stopped_reason}.
          </p>
        )}
        {op?.kind === "start" && <OperationProgress op={op} now={now} testId="pod-progress" fallback={`Starting ${pod.name}…`} />}
        {error && (
          <p className="notice notice-bad" role="alert" data-testid="pod-error">
            {error}
          </p>
        )}
      </div>
      <div className="row-actions">
        {can.start && (
          <Button size="sm" variant="primary" data-testid="pod-start" busy={op?.kind === "start"} disabled={busy} onClick={() => onStart(pod)}>
            Start
          </Button>
        )}
        {can.stop && (
          <Button size="sm" data-testid="pod-stop" busy={op?.kind === "stop"} disabled={busy} onClick={() => onStop(pod)}>
            Stop
          </Button>
        )}
        <Button size="sm" variant="ghost" className="btn-danger-text" data-testid="pod-terminate" disabled={busy} onClick={() => onTerminate(pod)}>
          Terminate
        </Button>
      </div>
    </li>
  );
}

function CreatingLine({ op, now, onShow, onDismiss }: { op: CreateOperation; now: number; onShow: () => void; onDismiss: () => void }) {
  return (
    <div className="card pod-creating" data-testid="pod-creating">
      <p className="pod-creating-title">
        Creating <strong>{op.name}</strong>
      </p>
      {op.error ? (
        <p className="notice notice-bad" role="alert" data-testid="pod-creating-error">
          The pod was not created. {op.error}
        </p>
      ) : (
        <OperationProgress op={op} now={now} testId="pod-creating-progress" fallback="Asking RunPod for a pod…" />
      )}
      <div className="row-actions">
        <Button size="sm" onClick={onShow}>
          Show
        </Button>
        {op.error && (
          <Button size="sm" variant="ghost" onClick={onDismiss}>
            Dismiss
          </Button>
        )}
      </div>
    </div>
  );
}
