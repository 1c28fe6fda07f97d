import { useCallback, useEffect, useState, type FormEvent, type KeyboardEvent } from "react";
import { commands, type Estimate, type Job, type SubmitRequest, type Template } from "../../bindings";
import { Button } from "../../components/Button";
import { LoadFailedNotice } from "../../components/ListNotices";
import { Field } from "../../components/Field";
import { Loading } from "../../components/Spinner";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";
import { useOpenOutput } from "../gallery/useOpenOutput";
import { isFinal, PRIORITIES, priorityLabel } from "../jobs/jobFormat";
import { useJobs } from "../jobs/JobsContext";
import { useServers } from "../servers/ServersContext";
import { StatusBadge } from "../servers/StatusBadge";
import { statusLabel } from "../servers/statusFormat";
import {
  draftFromTemplate,
  hasErrors,
  POLICY_HINTS,
  templateRequest,
  validateTemplateDraft,
  workflowRequest,
  type TemplateDraft,
  type TemplateErrors,
  type WorkflowDraft,
} from "./generateModel";
import { estimateText } from "./estimateFormat";
import { useGenerateSession, type SourceMode } from "./GenerateSession";
import { JobCard } from "./JobCard";
import { RoutingPolicySelect } from "./RoutingPolicySelect";
import { TemplateForm } from "./TemplateForm";
import { useRouterConfig } from "./useRouterConfig";
import { WorkflowImport } from "./WorkflowImport";

// Field order, for moving focus to the first mistake.
const FIELD_ORDER: (keyof TemplateErrors)[] = ["prompt", "seed", "steps", "width", "height"];

const NO_ERRORS: TemplateErrors = {};

const SOURCES: { id: SourceMode; label: string }[] = [
  { id: "template", label: "Template" },
  { id: "workflow", label: "Import workflow" },
];

export function GeneratePage() {
  const { draft, update } = useGenerateSession();
  const { servers, statuses } = useServers();
  const { byId, previews, upsert } = useJobs();
  const toast = useToast();
  const open = useOpenOutput();
  const router = useRouterConfig();
  const [templatesError, setTemplatesError] = useState<string | null>(null);
  const [showErrors, setShowErrors] = useState(false);
  const [submitting, setSubmitting] = useState(false);
  const [submitError, setSubmitError] = useState<string | null>(null);
  const [cancelling, setCancelling] = useState(false);
  const [retrying, setRetrying] = useState(false);

  const loadTemplates = useCallback(async () => {
    setTemplatesError(null);
    try {
      const list = await call(commands.templatesList());
      update((d) => {
        const keep = d.template && list.some((t) => t.id === d.template?.templateId);
        return { ...d, templates: list, template: keep ? d.template : list[0] ? draftFromTemplate(list[0], d.template) : null };
      });
    } catch (e) {
      setTemplatesError(errorMessage(e));
    }
  }, [update]);

  useEffect(() => {
    void loadTemplates();
  }, [loadTemplates]);

  const templates = draft.templates;
  const errors = showErrors && draft.template ? validateTemplateDraft(draft.template) : NO_ERRORS;
  // A chosen server that was since removed falls back to Auto.
  const target = draft.target && servers?.some((s) => s.id === draft.target) ? draft.target : null;
  const targetServer = target ? servers?.find((s) => s.id === target) : undefined;
  const targetStatus = targetServer ? (statuses[targetServer.id]?.status ?? "unknown") : null;
  const job: Job | undefined = draft.currentJobId ? byId[draft.currentJobId] : undefined;

  // What each server would take and cost for what is in the form (asked again a moment after it changes).
  const [estimates, setEstimates] = useState<Estimate[] | null>(null);
  const quietRequest: SubmitRequest | null = (() => {
    if (draft.mode === "template") {
      const d = draft.template;
      if (!d || hasErrors(validateTemplateDraft(d))) return null;
      return templateRequest(d, templates?.find((t) => t.id === d.templateId), null, draft.priority);
    }
    const w = draft.workflow;
    return w.info ? workflowRequest({ ...w, info: w.info }, null, draft.priority) : null;
  })();
  const requestKey = quietRequest ? JSON.stringify(quietRequest) : "";
  // Also asked again when a server comes or goes, when its queue changes (the wait before a job starts), when a
  // cloud endpoint's workers change (one woke or went cold: the core decides), and when the job shown finishes (it
  // measured its server's time).
  const fleetKey = [
    ...(servers ?? []).map((s) => {
      const st = statuses[s.id];
      const workers = st?.workers ? `${st.workers.idle}+${st.workers.running}` : "";
      const queue = st?.queue ? `${st.queue.running}+${st.queue.pending}` : "";
      return `${s.id}:${st?.status ?? "unknown"}:${workers}:${queue}`;
    }),
    job && isFinal(job.state) ? job.id : "",
  ].join(",");
  useEffect(() => {
    if (!requestKey) {
      setEstimates(null);
      return;
    }
    let live = true;
    const timer = setTimeout(() => {
      commands
        .jobsEstimate(JSON.parse(requestKey) as SubmitRequest)
        .then((r) => {
          if (live && r.status === "ok") setEstimates(r.data);
        })
        .catch(() => {});
    }, 400);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [requestKey, fleetKey]);
  const estimateOf = (id: string) => estimates?.find((e) => e.server_id === id);
  const autoEstimate = estimates?.find((e) => e.auto);
  const chosenEstimate = target ? estimateOf(target) : autoEstimate;

  function changeTemplateDraft(change: Partial<TemplateDraft>) {
    setSubmitError(null);
    update((d) => (d.template ? { ...d, template: { ...d.template, ...change } } : d));
  }

  function chooseTemplate(t: Template) {
    update((d) => ({ ...d, template: draftFromTemplate(t, d.template) }));
  }

  function changeWorkflow(change: (w: WorkflowDraft) => WorkflowDraft) {
    setSubmitError(null);
    update((d) => ({ ...d, workflow: change(d.workflow) }));
  }

  function buildRequest(): SubmitRequest | null {
    if (draft.mode === "template") {
      const d = draft.template;
      if (!d) {
        setSubmitError(templatesError ? `The templates could not be loaded: ${templatesError}` : "The templates are still loading; try again in a moment.");
        return null;
      }
      const errs = validateTemplateDraft(d);
      if (hasErrors(errs)) {
        setShowErrors(true);
        const first = FIELD_ORDER.find((k) => errs[k]);
        if (first) document.getElementById(first)?.focus();
        return null;
      }
      return templateRequest(d, templates?.find((t) => t.id === d.templateId), target, draft.priority);
    }
    const w = draft.workflow;
    if (!w.info) {
      setSubmitError(
        w.error
          ? "This workflow cannot run; see the message above."
          : w.json.trim() === ""
            ? "Choose a workflow file or paste its JSON first."
            : "Press Read workflow first, so you can check its inputs and models.",
      );
      return null;
    }
    return workflowRequest({ ...w, info: w.info }, target, draft.priority);
  }

  async function run() {
    if (submitting) return;
    setSubmitError(null);
    const request = buildRequest();
    if (!request) return;
    setSubmitting(true);
    try {
      const submitted = await call(commands.jobsSubmit(request));
      upsert(submitted);
      update((d) => ({ ...d, currentJobId: submitted.id }));
      setShowErrors(false);
    } catch (e) {
      setSubmitError(errorMessage(e));
    } finally {
      setSubmitting(false);
    }
  }

  async function retry(j: Job) {
    setRetrying(true);
    try {
      const again = await call(commands.jobsRetry(j.id));
      upsert(again);
      update((d) => ({ ...d, currentJobId: again.id }));
    } catch (e) {
      toast.show(errorMessage(e), { kind: "error", title: `Could not run ${j.name} again` });
    } finally {
      setRetrying(false);
    }
  }

  async function cancel(j: Job) {
    setCancelling(true);
    try {
      upsert(await call(commands.jobsCancel(j.id)));
    } catch (e) {
      toast.show(errorMessage(e), { kind: "error", title: `Could not cancel ${j.name}` });
    } finally {
      setCancelling(false);
    }
  }

  function onSubmit(e: FormEvent) {
    e.preventDefault();
    void run();
  }

  function onKeyDown(e: KeyboardEvent) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      void run();
    }
  }

  let targetHint: string;
  if (servers && servers.length === 0) {
    targetHint = "No servers yet: add one on the Servers page. Jobs wait in the queue until a server can take them.";
  } else if (!targetServer) {
    targetHint = router.config ? POLICY_HINTS[router.config.policy] : "The router picks a server when the job is ready to run.";
  } else if (targetStatus !== "connected") {
    targetHint = `${targetServer.name} is not answering right now (${statusLabel(targetStatus ?? "unknown").toLowerCase()}); the job waits in the queue until it does. Choose Auto to let another server take it.`;
  } else {
    targetHint = `Only ${targetServer.name} runs this job.`;
  }

  return (
    <div className="page page-wide">
      <header className="page-header">
        <div>
          <h1 className="page-title">Generate</h1>
          <p className="page-subtitle muted">Run a template or your own workflow on the fleet.</p>
        </div>
        <div className="page-actions">
          <RoutingPolicySelect router={router} />
        </div>
      </header>

      <div className="generate-layout">
        <form className="card generate-form" onSubmit={onSubmit} onKeyDown={onKeyDown} noValidate aria-label="New job">
          <div className="segmented" role="radiogroup" aria-label="What to run">
            {SOURCES.map((s) => (
              <label key={s.id} className={`segment${draft.mode === s.id ? " segment-on" : ""}`}>
                <input
                  type="radio"
                  name="source"
                  value={s.id}
                  data-testid={`source-${s.id}`}
                  checked={draft.mode === s.id}
                  onChange={() => {
                    setSubmitError(null);
                    update((d) => ({ ...d, mode: s.id }));
                  }}
                />
                {s.label}
              </label>
            ))}
          </div>

          {draft.mode === "template" ? (
            templatesError && !draft.template ? (
              <LoadFailedNotice title="The templates could not be loaded." error={templatesError} onRetry={() => void loadTemplates()} testId="templates-error" />
            ) : !templates || !draft.template ? (
              <Loading>Loading templates…</Loading>
            ) : (
              <TemplateForm templates={templates} draft={draft.template} errors={errors} onChange={changeTemplateDraft} onTemplate={chooseTemplate} />
            )
          ) : (
            <WorkflowImport draft={draft.workflow} onChange={changeWorkflow} />
          )}

          <div className="run-options">
            <Field id="target-select" label="Server">
              {(control) => (
                <div className="input-with-button">
                  <select
                    {...control}
                    aria-describedby="target-hint"
                    data-testid="target-select"
                    value={target ?? ""}
                    onChange={(e) => update((d) => ({ ...d, target: e.target.value || null }))}
                  >
                    <option value="">
                      Auto (router decides){autoEstimate ? ` — ${autoEstimate.name}, ${estimateText(autoEstimate)}` : ""}
                    </option>
                    {servers?.map((s) => (
                      <option key={s.id} value={s.id}>
                        {s.name} — {statusLabel(statuses[s.id]?.status ?? "unknown")}
                        {estimateOf(s.id) ? ` · ${estimateText(estimateOf(s.id))}` : ""}
                      </option>
                    ))}
                  </select>
                  {targetServer && <StatusBadge status={targetStatus ?? "unknown"} testId="target-status" />}
                </div>
              )}
            </Field>
            <Field id="priority" label="Priority">
              {(control) => (
                <select {...control} data-testid="priority" value={draft.priority} onChange={(e) => update((d) => ({ ...d, priority: Number(e.target.value) }))}>
                  {PRIORITIES.map((p) => (
                    <option key={p} value={p}>
                      {priorityLabel(p)}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Button type="submit" variant="primary" className="run-button" data-testid="run" busy={submitting} title="Run (Ctrl+Enter)">
              {submitting ? "Starting…" : "Run"}
            </Button>
            <p id="target-hint" className="field-hint run-hint" data-testid="target-hint">
              {targetHint}
            </p>
            {/* Its line is kept while the estimate is asked for, so Run does not move under the pointer when it comes. */}
            <p className="field-hint run-hint run-estimate" data-testid={chosenEstimate ? "target-estimate" : undefined}>
              {chosenEstimate && (
                <>
                  {target ? "Estimate" : `Auto would use ${chosenEstimate.name}`}: {estimateText(chosenEstimate)}
                </>
              )}
            </p>
            {submitError && (
              <p className="notice notice-bad run-error" role="alert" data-testid="submit-error">
                {submitError}
              </p>
            )}
          </div>
        </form>

        <div className="generate-side">
          {job ? (
            <JobCard
              job={job}
              preview={previews[job.id]}
              servers={servers}
              cancelling={cancelling}
              onCancel={cancel}
              retrying={retrying}
              onRetry={(j) => void retry(j)}
              onOpen={(o) => void open(o)}
            />
          ) : (
            <section className="card job-card job-card-empty" aria-label="Result">
              <div className="preview-frame">
                <p className="preview-placeholder muted">Your image appears here.</p>
              </div>
              <p className="muted small">Press Run: the job&apos;s progress and a live preview show here while it runs, then the result.</p>
            </section>
          )}
        </div>
      </div>
    </div>
  );
}
