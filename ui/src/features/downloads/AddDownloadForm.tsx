import { useRef, useState, type FormEvent } from "react";
import { commands, type DownloadItem } from "../../bindings";
import { Button } from "../../components/Button";
import { Field } from "../../components/Field";
import { call, CommandError, errorMessage } from "../../lib/errors";
import { emptyAddValues, hasErrors, toDownloadInput, validateAdd, type AddErrors, type AddValues } from "./addFormModel";

type Props = {
  /** Where files go when no destination is given (shown as a hint). */
  defaultFolder: string | null;
  onAdded: (item: DownloadItem) => void;
};

const FIELD_FOR_CODE: Record<string, keyof AddValues> = {
  "downloads.bad_url": "url",
  "downloads.bad_destination": "destination",
  "downloads.conflict": "destination",
  "downloads.bad_checksum": "sha256",
};

const FIELD_IDS: [keyof AddValues, string][] = [
  ["url", "download-url-input"],
  ["destination", "download-dest-input"],
  ["sha256", "download-sha-input"],
];

/** URL, destination (folder or file) and an optional SHA-256; mistakes show next to the field. */
export function AddDownloadForm({ defaultFolder, onAdded }: Props) {
  const [values, setValues] = useState<AddValues>(emptyAddValues);
  const [errors, setErrors] = useState<AddErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);

  function set<K extends keyof AddValues>(key: K, value: string) {
    setValues((v) => ({ ...v, [key]: value }));
    if (errors[key]) setErrors((e) => ({ ...e, [key]: undefined }));
  }

  function focusFirst(errs: AddErrors) {
    const first = FIELD_IDS.find(([k]) => errs[k]);
    if (first) formRef.current?.querySelector<HTMLInputElement>(`#${first[1]}`)?.focus();
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setFormError(null);
    const errs = validateAdd(values);
    setErrors(errs);
    if (hasErrors(errs)) {
      focusFirst(errs);
      return;
    }
    setBusy(true);
    try {
      const item = await call(commands.downloadsAdd(toDownloadInput(values)));
      onAdded(item);
      setValues(emptyAddValues);
    } catch (err) {
      const field = err instanceof CommandError ? FIELD_FOR_CODE[err.code] : undefined;
      if (field) {
        const next = { [field]: errorMessage(err) };
        setErrors(next);
        focusFirst(next);
      } else {
        setFormError(errorMessage(err));
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <form ref={formRef} className="card form-stack" aria-labelledby="add-download-title" onSubmit={(e) => void submit(e)} noValidate data-testid="add-download-form">
      <h2 id="add-download-title" className="card-title">
        Add a download
      </h2>
      <Field id="download-url-input" label="Link to the file" error={errors.url} hint="Hugging Face and CivitAI tokens saved in ComfyFleet are used automatically.">
        {(p) => (
          <input
            {...p}
            data-testid="download-url-input"
            type="url"
            inputMode="url"
            autoComplete="off"
            spellCheck={false}
            placeholder="https://huggingface.co/…/resolve/main/model.safetensors"
            value={values.url}
            onChange={(e) => set("url", e.target.value)}
          />
        )}
      </Field>
      <div className="field-row">
        <Field
          id="download-dest-input"
          label="Save to (folder or file)"
          error={errors.destination}
          hint={defaultFolder ? `Empty: ${defaultFolder}` : "Empty: the ComfyFleet downloads folder"}
        >
          {(p) => (
            <input
              {...p}
              data-testid="download-dest-input"
              type="text"
              autoComplete="off"
              spellCheck={false}
              placeholder="/home/you/ComfyUI/models/checkpoints"
              value={values.destination}
              onChange={(e) => set("destination", e.target.value)}
            />
          )}
        </Field>
        <Field id="download-sha-input" label="SHA-256 (optional)" error={errors.sha256} hint="Checked when the file is complete.">
          {(p) => (
            <input
              {...p}
              className="mono-input"
              data-testid="download-sha-input"
              type="text"
              autoComplete="off"
              spellCheck={false}
              placeholder="64 hexadecimal digits"
              value={values.sha256}
              onChange={(e) => set("sha256", e.target.value)}
            />
          )}
        </Field>
      </div>
      {formError && (
        <p className="notice notice-bad" role="alert" data-testid="add-download-error">
          {formError}
        </p>
      )}
      <div>
        <Button type="submit" variant="primary" busy={busy} data-testid="add-download">
          Download
        </Button>
      </div>
    </form>
  );
}
