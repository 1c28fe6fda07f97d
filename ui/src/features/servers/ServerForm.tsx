import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { commands, type AuthKind, type Flavour, type ServerKind, type ServerStatus, type Server } from "../../bindings";
import { Button } from "../../components/Button";
import { Field } from "../../components/Field";
import { Modal } from "../../components/Modal";
import { call, errorMessage } from "../../lib/errors";
import {
  emptyValues,
  FLAVOUR_LABELS,
  GPU_CLASSES,
  hasErrors,
  NAME_MAX,
  plainHttpWarning,
  toServerInput,
  URL_PLACEHOLDER,
  validate,
  validateConnection,
  valuesFromServer,
  type FormErrors,
  type FormValues,
} from "./formModel";
import { AUTH_LABELS, connectedDetails, statusLabel } from "./statusFormat";
import { StatusBadge } from "./StatusBadge";

type Props = {
  /** The server being edited, or null to add a new one. */
  server: Server | null;
  onClose: () => void;
  onSaved: (saved: Server, isNew: boolean) => void;
};

type TestResult = { kind: "status"; status: ServerStatus } | { kind: "error"; message: string };

const KEEP_SECRET_PLACEHOLDER = "•••• stored in your keychain — leave empty to keep";

const SECRET_LABEL: Record<Exclude<AuthKind, "none">, string> = {
  basic: "Password",
  bearer: "Bearer token",
  api_key: "API key value",
  comfyui_login: "ComfyUI-Login token",
};

const SECRET_HINT: Record<Exclude<AuthKind, "none">, string> = {
  basic: "Sent as HTTP Basic authentication. Stored in your OS keychain, never shown again.",
  bearer: "Sent as Authorization: Bearer <token>. Stored in your OS keychain, never shown again.",
  api_key: "Sent in the header named above. Stored in your OS keychain, never shown again.",
  comfyui_login:
    "The token printed by ComfyUI-Login at startup, sent as Authorization: Bearer. Stored in your OS keychain, never shown again.",
};

// Field order, for moving focus to the first mistake.
const FIELD_IDS: [keyof FormValues, string][] = [
  ["name", "server-name"],
  ["endpointId", "endpoint-id"],
  ["gpuClass", "gpu-class"],
  ["extraModels", "extra-models"],
  ["url", "server-url-input"],
  ["user", "auth-user"],
  ["header", "auth-header"],
  ["secret", "auth-secret"],
  ["timeoutSec", "server-timeout"],
  ["maxQueue", "server-max-queue"],
];
const ADVANCED_FIELDS: (keyof FormValues)[] = ["timeoutSec", "maxQueue", "notes"];

export function ServerForm({ server, onClose, onSaved }: Props) {
  const editing = server !== null;
  const [values, setValues] = useState<FormValues>(() => (server ? valuesFromServer(server) : emptyValues()));
  const [errors, setErrors] = useState<FormErrors>({});
  const [submitted, setSubmitted] = useState(false);
  const [advancedOpen, setAdvancedOpen] = useState(false);
  const [showSecret, setShowSecret] = useState(false);
  const [saving, setSaving] = useState(false);
  const [testing, setTesting] = useState(false);
  const [testResult, setTestResult] = useState<TestResult | null>(null);
  const [formError, setFormError] = useState<string | null>(null);
  const [focusField, setFocusField] = useState<{ id: string } | null>(null);
  const nameRef = useRef<HTMLInputElement>(null);
  const mounted = useRef(true);
  useEffect(() => () => void (mounted.current = false), []);

  const cloud = values.serverKind === "runpod_serverless";
  const warning = useMemo(
    () => (cloud ? null : plainHttpWarning(values.url, values.authKind)),
    [cloud, values.url, values.authKind],
  );
  const keepsStoredSecret = editing && server.has_secret && values.authKind === server.auth.kind;

  useEffect(() => {
    if (focusField) document.getElementById(focusField.id)?.focus();
  }, [focusField]);

  function set<K extends keyof FormValues>(key: K, value: FormValues[K]) {
    const next = { ...values, [key]: value };
    setValues(next);
    if (submitted) setErrors(validate(next));
    setFormError(null);
    // A result for the old connection settings would mislead.
    if (key !== "name" && key !== "tags" && key !== "notes") setTestResult(null);
  }

  function showErrors(errs: FormErrors) {
    setErrors(errs);
    if (ADVANCED_FIELDS.some((k) => errs[k])) setAdvancedOpen(true);
    const first = FIELD_IDS.find(([key]) => errs[key]);
    if (first) setFocusField({ id: first[1] });
  }

  async function onTestConnection() {
    const errs = validateConnection(values);
    if (hasErrors(errs)) {
      showErrors({ ...(submitted ? validate(values) : {}), ...errs });
      return;
    }
    setTesting(true);
    setTestResult(null);
    try {
      const status = await call(commands.serversTestInput(toServerInput(values, "Unsaved server"), server?.id ?? null));
      if (mounted.current) setTestResult({ kind: "status", status });
    } catch (e) {
      if (mounted.current) setTestResult({ kind: "error", message: errorMessage(e) });
    } finally {
      if (mounted.current) setTesting(false);
    }
  }

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (saving) return;
    setSubmitted(true);
    const errs = validate(values);
    if (hasErrors(errs)) {
      showErrors(errs);
      return;
    }
    setErrors({});
    setSaving(true);
    setFormError(null);
    try {
      const input = toServerInput(values);
      const saved = await call(server ? commands.serversUpdate(server.id, input) : commands.serversAdd(input));
      if (mounted.current) onSaved(saved, !server);
    } catch (err) {
      if (mounted.current) setFormError(errorMessage(err));
    } finally {
      if (mounted.current) setSaving(false);
    }
  }

  const kind = values.authKind;
  const title = editing ? `Edit ${server.name}` : "Add server";

  return (
    <Modal title={title} onClose={onClose} initialFocus={nameRef} testId="server-form">
      <form className="modal-form" onSubmit={onSubmit} noValidate aria-label={title}>
        <div className="modal-body">
          {editing && server.needs_credentials && (
            <p className="notice notice-warn">
              This server has no stored password or token (exports never include them). Enter it below to connect.
            </p>
          )}

          <Field id="server-name" label="Name" error={errors.name}>
            {(p) => (
              <input
                {...p}
                ref={nameRef}
                data-testid="server-name"
                type="text"
                autoComplete="off"
                placeholder="e.g. GPU box"
                maxLength={NAME_MAX * 4}
                value={values.name}
                onChange={(e) => set("name", e.target.value)}
              />
            )}
          </Field>

          {!editing && (
            <fieldset className="kind-chooser" data-testid="server-kind">
              <legend>Kind</legend>
              {(
                [
                  ["comfyui", "ComfyUI server", "On this computer, your network, or a RunPod pod"],
                  ["runpod_serverless", "RunPod serverless endpoint", "worker-comfyui, billed per second, wakes on demand"],
                ] as [ServerKind, string, string][]
              ).map(([k, label, hint]) => (
                <label key={k} className="kind-option">
                  <input
                    type="radio"
                    name="server-kind"
                    value={k}
                    data-testid={`server-kind-${k}`}
                    checked={values.serverKind === k}
                    onChange={() => set("serverKind", k)}
                  />
                  <span>
                    <strong>{label}</strong>
                    <span className="muted small"> — {hint}</span>
                  </span>
                </label>
              ))}
            </fieldset>
          )}

          {cloud && (
            <div className="endpoint-fields">
              <Field id="endpoint-id" label="Endpoint ID" hint="Shown in the RunPod console under Serverless → your endpoint." error={errors.endpointId}>
                {(p) => (
                  <input
                    {...p}
                    data-testid="endpoint-id"
                    type="text"
                    autoComplete="off"
                    spellCheck={false}
                    placeholder="e.g. abc123xyz"
                    value={values.endpointId}
                    onChange={(e) => set("endpointId", e.target.value)}
                  />
                )}
              </Field>
              <div className="field-row">
                <Field id="gpu-class" label="GPU class" hint="What its workers run on; prices depend on it." error={errors.gpuClass}>
                  {(p) => (
                    <>
                      <input
                        {...p}
                        data-testid="gpu-class"
                        type="text"
                        list="gpu-classes"
                        autoComplete="off"
                        spellCheck={false}
                        value={values.gpuClass}
                        onChange={(e) => set("gpuClass", e.target.value)}
                      />
                      <datalist id="gpu-classes">
                        {GPU_CLASSES.map((g) => (
                          <option key={g} value={g} />
                        ))}
                      </datalist>
                    </>
                  )}
                </Field>
                <Field id="flavour" label="Image flavour" hint="Which models the image ships; the router sends it only jobs it can run.">
                  {(p) => (
                    <select {...p} data-testid="flavour" value={values.flavour} onChange={(e) => set("flavour", e.target.value as Flavour)}>
                      {(Object.keys(FLAVOUR_LABELS) as Flavour[]).map((f) => (
                        <option key={f} value={f}>
                          {FLAVOUR_LABELS[f]}
                        </option>
                      ))}
                    </select>
                  )}
                </Field>
              </div>
              <Field
                id="extra-models"
                label="More models (optional)"
                hint="Models on its network volume, as folder/file, one per line, e.g. loras/style.safetensors."
                error={errors.extraModels}
              >
                {(p) => (
                  <textarea {...p} data-testid="extra-models" rows={2} value={values.extraModels} onChange={(e) => set("extraModels", e.target.value)} />
                )}
              </Field>
              <p className="muted small" data-testid="endpoint-key-note">
                Calls use your RunPod API key from Settings → RunPod account; it stays in your system keychain.
              </p>
            </div>
          )}

          {!cloud && (
          <>
          <Field
            id="server-url-input"
            label="URL"
            hint="The address ComfyUI listens on. For ComfyUI on this computer it is usually http://127.0.0.1:8188."
            error={errors.url}
          >
            {(p) => (
              <input
                {...p}
                data-testid="server-url-input"
                type="url"
                inputMode="url"
                autoComplete="off"
                spellCheck={false}
                placeholder={URL_PLACEHOLDER}
                value={values.url}
                onChange={(e) => set("url", e.target.value)}
              />
            )}
          </Field>

          <Field id="auth-kind" label="Authentication">
            {(p) => (
              <select {...p} data-testid="auth-kind" value={kind} onChange={(e) => set("authKind", e.target.value as AuthKind)}>
                {(Object.keys(AUTH_LABELS) as AuthKind[]).map((k) => (
                  <option key={k} value={k}>
                    {AUTH_LABELS[k]}
                  </option>
                ))}
              </select>
            )}
          </Field>

          {kind !== "none" && (
            <div className="auth-fields">
              {kind === "basic" && (
                <Field id="auth-user" label="User" error={errors.user}>
                  {(p) => (
                    <input
                      {...p}
                      data-testid="auth-user"
                      type="text"
                      autoComplete="off"
                      spellCheck={false}
                      value={values.user}
                      onChange={(e) => set("user", e.target.value)}
                    />
                  )}
                </Field>
              )}
              {kind === "api_key" && (
                <Field id="auth-header" label="Header name" hint="The HTTP header the server reads the key from." error={errors.header}>
                  {(p) => (
                    <input
                      {...p}
                      data-testid="auth-header"
                      type="text"
                      autoComplete="off"
                      spellCheck={false}
                      placeholder="X-API-Key"
                      value={values.header}
                      onChange={(e) => set("header", e.target.value)}
                    />
                  )}
                </Field>
              )}
              <Field id="auth-secret" label={SECRET_LABEL[kind]} hint={SECRET_HINT[kind]} error={errors.secret}>
                {(p) => (
                  <div className="input-with-button">
                    <input
                      {...p}
                      data-testid="auth-secret"
                      type={showSecret ? "text" : "password"}
                      autoComplete="new-password"
                      spellCheck={false}
                      placeholder={keepsStoredSecret ? KEEP_SECRET_PLACEHOLDER : ""}
                      value={values.secret}
                      onChange={(e) => set("secret", e.target.value)}
                    />
                    <Button
                      size="sm"
                      variant="ghost"
                      aria-pressed={showSecret}
                      aria-label={showSecret ? "Hide the secret" : "Show the secret"}
                      onClick={() => setShowSecret((v) => !v)}
                    >
                      {showSecret ? "Hide" : "Show"}
                    </Button>
                  </div>
                )}
              </Field>
            </div>
          )}

          {warning && (
            <p className="notice notice-warn" data-testid="form-http-warning" role="note">
              <span aria-hidden="true">⚠ </span>
              {warning}
            </p>
          )}
          </>
          )}

          <Field id="server-tags" label="Tags" hint="Comma separated, e.g. studio, 24gb, sdxl.">
            {(p) => (
              <input
                {...p}
                data-testid="server-tags"
                type="text"
                autoComplete="off"
                value={values.tags}
                onChange={(e) => set("tags", e.target.value)}
              />
            )}
          </Field>

          <button
            type="button"
            className="disclosure"
            data-testid="advanced-toggle"
            aria-expanded={advancedOpen}
            aria-controls="server-advanced"
            onClick={() => setAdvancedOpen((v) => !v)}
          >
            <span className="disclosure-arrow" aria-hidden="true">
              {advancedOpen ? "▾" : "▸"}
            </span>
            Advanced
          </button>
          {advancedOpen && (
            <div id="server-advanced" className="advanced">
              <div className="field-row">
                <Field id="server-timeout" label="Request timeout (seconds)" error={errors.timeoutSec}>
                  {(p) => (
                    <input
                      {...p}
                      data-testid="server-timeout"
                      type="number"
                      min={1}
                      max={600}
                      step="any"
                      value={values.timeoutSec}
                      onChange={(e) => set("timeoutSec", e.target.value)}
                    />
                  )}
                </Field>
                <Field id="server-max-queue" label="Max queue size" hint="Empty for no limit." error={errors.maxQueue}>
                  {(p) => (
                    <input
                      {...p}
                      data-testid="server-max-queue"
                      type="number"
                      min={1}
                      step={1}
                      value={values.maxQueue}
                      onChange={(e) => set("maxQueue", e.target.value)}
                    />
                  )}
                </Field>
              </div>
              <Field id="server-notes" label="Notes">
                {(p) => (
                  <textarea {...p} data-testid="server-notes" rows={3} value={values.notes} onChange={(e) => set("notes", e.target.value)} />
                )}
              </Field>
            </div>
          )}

          {testResult && <TestResultView result={testResult} />}

          {formError && (
            <p className="notice notice-bad" data-testid="form-error" role="alert">
              {formError}
            </p>
          )}
        </div>

        <footer className="modal-footer">
          <Button data-testid="test-connection" busy={testing} onClick={onTestConnection}>
            {testing ? "Testing…" : "Test connection"}
          </Button>
          <span className="spacer" />
          <Button data-testid="cancel-form" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" variant="primary" data-testid="save-server" busy={saving}>
            {editing ? "Save changes" : "Add server"}
          </Button>
        </footer>
      </form>
    </Modal>
  );
}

function TestResultView({ result }: { result: TestResult }) {
  if (result.kind === "error") {
    return (
      <div className="test-result test-result-bad" data-testid="test-result" data-status="error" role="status">
        <strong>Test failed.</strong> {result.message}
      </div>
    );
  }
  const s = result.status;
  const ok = s.status === "connected";
  const extra = ok ? [s.devices[0]?.name, s.python_version && `Python ${s.python_version}`, s.pytorch_version && `PyTorch ${s.pytorch_version}`].filter(Boolean).join(" · ") : "";
  return (
    <div className={`test-result ${ok ? "test-result-ok" : "test-result-bad"}`} data-testid="test-result" data-status={s.status} role="status">
      <div className="test-result-head">
        <StatusBadge status={s.status} testId="test-result-badge" />
        <span>{ok ? connectedDetails(s).join(" · ") : s.error ?? statusLabel(s.status)}</span>
      </div>
      {extra && <div className="muted small">{extra}</div>}
    </div>
  );
}
