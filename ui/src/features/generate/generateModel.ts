// The Generate form as data: template fields as typed, their checks, and the SubmitRequest they make.
// Pure, so the rules are tested without rendering.
import type { Policy, SubmitRequest, Template, TemplateFields, TextEdit, WorkflowInfo } from "../../bindings";

export type TemplateDraft = {
  templateId: string;
  prompt: string;
  negative: string;
  /** Empty = a random seed, picked by the core when the job is built. */
  seed: string;
  steps: string;
  width: string;
  height: string;
};

export type TemplateErrors = Partial<Record<"prompt" | "seed" | "steps" | "width" | "height", string>>;

export type WorkflowDraft = {
  /** The JSON as loaded or pasted. */
  json: string;
  /** The file it came from, if any. */
  fileName: string | null;
  /** What `workflowInspect` said about `json`; null until inspected (and again after `json` changes). */
  info: WorkflowInfo | null;
  /** Text input values by `inputKey`, starting from the workflow's own. */
  values: Record<string, string>;
  error: string | null;
};

export const SEED_MAX = 4_294_967_295;
export const STEPS_MIN = 1;
export const STEPS_MAX = 150;
export const SIZE_MIN = 64;
export const SIZE_MAX = 4096;
/** The core refuses larger workflows; checked here before reading a file into memory. */
export const MAX_WORKFLOW_BYTES = 16 * 1024 * 1024;
export const DEFAULT_PRIORITY = 5;

export const emptyWorkflowDraft: WorkflowDraft = { json: "", fileName: null, info: null, values: {}, error: null };

/**
 * The fields of `t`. Switching templates keeps what the user wrote (prompt, seed); steps, size and the
 * negative prompt are tuned per model, so they take the new template's defaults.
 */
export function draftFromTemplate(t: Template, previous?: TemplateDraft | null): TemplateDraft {
  return {
    templateId: t.id,
    prompt: previous?.prompt ?? t.defaults.prompt,
    negative: t.defaults.negative,
    seed: previous?.seed ?? (t.defaults.seed == null ? "" : String(t.defaults.seed)),
    steps: String(t.defaults.steps),
    width: String(t.defaults.width),
    height: String(t.defaults.height),
  };
}

function wholeNumber(text: string): number | null {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : null;
}

function sizeError(label: string, text: string): string | undefined {
  const n = wholeNumber(text);
  if (n == null || n < SIZE_MIN || n > SIZE_MAX) return `${label} must be a whole number of pixels from ${SIZE_MIN} to ${SIZE_MAX}.`;
  if (n % 8 !== 0) return `${label} must be a multiple of 8 (e.g. 512, 768, 1024).`;
  return undefined;
}

export function validateTemplateDraft(d: TemplateDraft): TemplateErrors {
  const errors: TemplateErrors = {};
  if (d.prompt.trim() === "") errors.prompt = "Describe the image you want.";
  if (d.seed.trim() !== "") {
    const seed = wholeNumber(d.seed);
    if (seed == null || seed > SEED_MAX) {
      errors.seed = `The seed is a whole number from 0 to ${SEED_MAX}. Leave it empty for a random one.`;
    }
  }
  const steps = wholeNumber(d.steps);
  if (steps == null || steps < STEPS_MIN || steps > STEPS_MAX) errors.steps = `Steps must be a whole number from ${STEPS_MIN} to ${STEPS_MAX}.`;
  const w = sizeError("Width", d.width);
  if (w) errors.width = w;
  const h = sizeError("Height", d.height);
  if (h) errors.height = h;
  return errors;
}

export function hasErrors(errors: object): boolean {
  return Object.values(errors).some(Boolean);
}

/** The fields as the core takes them; call only on a draft without errors. Empty seed → null (random). */
export function templateFields(d: TemplateDraft): TemplateFields {
  const seed = d.seed.trim();
  return {
    prompt: d.prompt.trim(),
    negative: d.negative.trim(),
    seed: seed === "" ? null : Number(seed),
    steps: Number(d.steps.trim()),
    width: Number(d.width.trim()),
    height: Number(d.height.trim()),
  };
}

/** A seed for the dice button: any of the 2^32 values. */
export function randomSeed(random: () => number = Math.random): number {
  return Math.floor(random() * (SEED_MAX + 1));
}

const NAME_MAX = 60;

/** A job's name from its prompt: one line, at most 60 characters. */
export function nameFromPrompt(prompt: string, fallback: string): string {
  const line = prompt.replace(/\s+/g, " ").trim();
  if (line === "") return fallback;
  return line.length <= NAME_MAX ? line : `${line.slice(0, NAME_MAX - 1).trimEnd()}…`;
}

/** A job's name from the workflow file: "portrait-v2.json" → "portrait-v2". */
export function nameFromFile(fileName: string | null): string {
  const base = fileName?.replace(/\.json$/i, "").trim();
  return base ? base : "Imported workflow";
}

/** The key of a workflow text input in `WorkflowDraft.values`. */
export function inputKey(nodeId: string, field: string): string {
  return `${nodeId}\u0000${field}`;
}

/** The workflow's text inputs as editable values. */
export function initialValues(info: WorkflowInfo): Record<string, string> {
  return Object.fromEntries(info.text_inputs.map((t) => [inputKey(t.node_id, t.field), t.value]));
}

/** Only the inputs the user changed, in the workflow's order. */
export function workflowEdits(info: WorkflowInfo, values: Record<string, string>): TextEdit[] {
  return info.text_inputs
    .filter((t) => {
      const v = values[inputKey(t.node_id, t.field)];
      return v !== undefined && v !== t.value;
    })
    .map((t) => ({ node_id: t.node_id, field: t.field, value: values[inputKey(t.node_id, t.field)] }));
}

export function templateRequest(d: TemplateDraft, template: Template | undefined, target: string | null, priority: number): SubmitRequest {
  const fields = templateFields(d);
  return {
    name: nameFromPrompt(fields.prompt, template?.name ?? d.templateId),
    source: { kind: "template", template_id: d.templateId, fields },
    target,
    priority,
  };
}

export function workflowRequest(w: WorkflowDraft & { info: WorkflowInfo }, target: string | null, priority: number): SubmitRequest {
  return {
    name: nameFromFile(w.fileName),
    source: { kind: "workflow", workflow_json: w.json, edits: workflowEdits(w.info, w.values) },
    target,
    priority,
  };
}

export const POLICY_LABELS: Record<Policy, string> = {
  manual: "Active server",
  least_busy: "Least busy",
  round_robin: "Round robin",
  local_first: "Local first",
  fastest: "Fastest",
};

/** What Auto does under each policy. */
export const POLICY_HINTS: Record<Policy, string> = {
  manual: "Auto sends jobs to the active server; with auto-switch on, to the next healthy one when it stops answering.",
  least_busy: "Auto sends each job to the server with the shortest queue.",
  round_robin: "Auto gives each server a job in turn.",
  local_first: "Auto uses servers tagged “local” while they answer and their queue is short; the others take the overflow.",
  fastest: "Auto sends each job where it should finish first: queue length × that server's measured time for this workflow.",
};
