import { useRef, useState } from "react";
import { commands } from "../../bindings";
import { Button } from "../../components/Button";
import { Field } from "../../components/Field";
import { call, errorMessage } from "../../lib/errors";
import { plural } from "../../lib/format";
import { initialValues, inputKey, MAX_WORKFLOW_BYTES, type WorkflowDraft } from "./generateModel";

const MB = 1024 * 1024;

type Props = {
  draft: WorkflowDraft;
  onChange: (change: (w: WorkflowDraft) => WorkflowDraft) => void;
};

function readText(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result ?? ""));
    reader.onerror = () => reject(reader.error ?? new Error("the file could not be read"));
    reader.readAsText(file);
  });
}

/** An API-format ComfyUI workflow from a file or pasted, with its text inputs editable and the models it needs. */
export function WorkflowImport({ draft, onChange }: Props) {
  const fileInput = useRef<HTMLInputElement>(null);
  const [inspecting, setInspecting] = useState(false);

  async function inspect(json: string, fileName: string | null) {
    onChange((w) => ({ ...w, json, fileName, info: null, values: {}, error: null }));
    if (json.trim() === "") return;
    setInspecting(true);
    try {
      const info = await call(commands.workflowInspect(json));
      onChange((w) => (w.json === json ? { ...w, info, values: initialValues(info), error: null } : w));
    } catch (e) {
      const message = errorMessage(e);
      onChange((w) => (w.json === json ? { ...w, info: null, error: message } : w));
    } finally {
      setInspecting(false);
    }
  }

  async function onFile(file: File | undefined) {
    if (!file) return;
    if (file.size > MAX_WORKFLOW_BYTES) {
      onChange((w) => ({
        ...w,
        fileName: file.name,
        info: null,
        error: `${file.name} is ${Math.round(file.size / MB)} MB; ComfyFleet accepts workflows up to ${MAX_WORKFLOW_BYTES / MB} MB. Is this really a workflow file?`,
      }));
      return;
    }
    try {
      await inspect(await readText(file), file.name);
    } catch (e) {
      onChange((w) => ({ ...w, fileName: file.name, info: null, error: `${file.name} could not be read: ${errorMessage(e)}` }));
    }
  }

  const info = draft.info;

  return (
    <div className="form-stack">
      <div className="import-bar">
        <Button data-testid="workflow-file-button" onClick={() => fileInput.current?.click()} busy={inspecting}>
          Choose workflow file…
        </Button>
        <input
          ref={fileInput}
          type="file"
          accept=".json,application/json"
          className="visually-hidden-input"
          tabIndex={-1}
          aria-hidden="true"
          data-testid="workflow-file"
          onChange={(e) => {
            void onFile(e.target.files?.[0]);
            e.target.value = "";
          }}
        />
        <span className="muted small" data-testid="workflow-file-name">
          {draft.fileName ? draft.fileName : "or paste the JSON below"}
        </span>
      </div>

      <Field
        id="workflow-json"
        label="Workflow (API format)"
        hint={
          <>
            In ComfyUI, turn on Settings › Comfy › Dev mode, then use Workflow › Export (API). A workflow saved the usual way
            (with “nodes” and “links”) cannot be queued.
          </>
        }
      >
        {(control) => (
          <textarea
            {...control}
            className="mono-input"
            data-testid="workflow-json"
            rows={5}
            spellCheck={false}
            placeholder='{"3": {"class_type": "KSampler", "inputs": {…}}, …}'
            value={draft.json}
            onChange={(e) => {
              const json = e.target.value;
              onChange((w) => ({ ...w, json, fileName: null, info: null, values: {}, error: null }));
            }}
          />
        )}
      </Field>

      {!info && (
        <div>
          <Button data-testid="inspect-workflow" onClick={() => void inspect(draft.json, draft.fileName)} busy={inspecting} disabled={draft.json.trim() === ""}>
            Read workflow
          </Button>
        </div>
      )}

      {draft.error && (
        <p className="notice notice-bad" role="alert" data-testid="workflow-error">
          {draft.error}
        </p>
      )}

      {info && (
        <div className="workflow-info" data-testid="workflow-info">
          <p className="muted" data-testid="workflow-summary">
            {plural(info.node_count, "node")} · {plural(info.text_inputs.length, "text input")} · {plural(info.models.length, "model")}
          </p>

          <section aria-labelledby="workflow-models-title">
            <h3 id="workflow-models-title" className="subsection-title">
              Models it needs
            </h3>
            {info.models.length === 0 ? (
              <p className="muted small">It names no model files.</p>
            ) : (
              <ul className="model-list" data-testid="workflow-models">
                {info.models.map((m) => (
                  <li key={`${m.folder}/${m.name}`} data-testid="workflow-model">
                    <span className="muted">{m.folder}/</span>
                    <span className="model-name">{m.name}</span>
                  </li>
                ))}
              </ul>
            )}
          </section>

          <section aria-labelledby="workflow-inputs-title">
            <h3 id="workflow-inputs-title" className="subsection-title">
              Text inputs
            </h3>
            {info.text_inputs.length === 0 ? (
              <p className="muted small">It has no text inputs to edit; it runs as it is.</p>
            ) : (
              <div className="form-stack">
                {info.text_inputs.map((t) => {
                  const key = inputKey(t.node_id, t.field);
                  const id = `wf-input-${t.node_id}-${t.field}`.replace(/[^\w-]/g, "_");
                  const value = draft.values[key] ?? t.value;
                  return (
                    <Field
                      key={key}
                      id={id}
                      label={
                        <span className="input-origin">
                          <span className="node-id">#{t.node_id}</span> · {t.class_type} · <span className="field-name">{t.field}</span>
                          {value !== t.value && <span className="edited-mark"> · edited</span>}
                        </span>
                      }
                    >
                      {(control) => (
                        <textarea
                          {...control}
                          data-testid="workflow-input"
                          data-node-id={t.node_id}
                          data-field={t.field}
                          rows={value.length > 80 ? 3 : 1}
                          value={value}
                          onChange={(e) => {
                            const v = e.target.value;
                            onChange((w) => ({ ...w, values: { ...w.values, [key]: v } }));
                          }}
                        />
                      )}
                    </Field>
                  );
                })}
              </div>
            )}
          </section>
        </div>
      )}
    </div>
  );
}
