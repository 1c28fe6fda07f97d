// The "Create pod" form: starts from the core's default preset, lets a person change the name, GPU types, cloud,
// image and disk, and shows the create's progress (from its Channel) until the pod's ComfyUI answers.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { commands, type GpuType, type PodPreset } from "../../bindings";
import { Button } from "../../components/Button";
import { Field } from "../../components/Field";
import { Modal } from "../../components/Modal";
import { Loading } from "../../components/Spinner";
import { call, errorMessage } from "../../lib/errors";
import { OperationProgress, type CreateOperation } from "./OperationProgress";
import { DISK_MAX_GB, DISK_MIN_GB, gpuPriceLines, parseGpuTypes, presetErrors, type PresetErrors, type PresetFields } from "./podFormat";

type Props = {
  /** The create under way (or finished with an error), if any. */
  creating: CreateOperation | null;
  now: number;
  onCreate: (preset: PodPreset) => void;
  onClose: () => void;
};

function fieldsOf(preset: PodPreset): PresetFields {
  return {
    name: preset.name,
    gpuTypes: preset.gpu_types.join(", "),
    cloudType: preset.cloud_type,
    image: preset.image,
    diskGb: String(preset.container_disk_gb),
  };
}

export function CreatePodDialog({ creating, now, onCreate, onClose }: Props) {
  const [base, setBase] = useState<PodPreset | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [fields, setFields] = useState<PresetFields | null>(null);
  const [errors, setErrors] = useState<PresetErrors>({});
  /** RunPod's GPU catalogue with prices; the form works without it. */
  const [gpus, setGpus] = useState<GpuType[] | null>(null);
  const nameInput = useRef<HTMLInputElement>(null);
  const running = creating !== null && !creating.done;

  useEffect(() => {
    let live = true;
    Promise.resolve(commands.podsDefaultPreset())
      .then((preset) => {
        if (!live) return;
        setBase(preset);
        setFields(fieldsOf(preset));
      })
      .catch((e) => live && setLoadError(errorMessage(e)));
    call(commands.podsGpus())
      .then((list) => live && setGpus(list))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, []);

  useEffect(() => {
    if (fields && !running) nameInput.current?.focus();
    // Focus the name once the preset has arrived.
  }, [fields !== null]);

  function set<K extends keyof PresetFields>(key: K, value: string) {
    setFields((f) => f && { ...f, [key]: value });
    setErrors((e) => ({ ...e, [key]: undefined }));
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    if (!base || !fields || running) return;
    const found = presetErrors(fields);
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    onCreate({
      ...base,
      name: fields.name.trim(),
      gpu_types: parseGpuTypes(fields.gpuTypes),
      cloud_type: fields.cloudType,
      image: fields.image.trim(),
      container_disk_gb: Number(fields.diskGb.trim()),
    });
  }

  return (
    <Modal title="Create a RunPod pod" onClose={onClose} testId="create-pod-dialog">
      {loadError ? (
        <div className="modal-body">
          <p className="notice notice-bad" role="alert">
            The default pod settings could not be read. {loadError}
          </p>
        </div>
      ) : !fields ? (
        <div className="modal-body">
          <Loading>Loading…</Loading>
        </div>
      ) : (
        <form className="modal-form" onSubmit={submit} noValidate aria-label="Create a RunPod pod">
          <div className="modal-body">
            <p className="field-hint">
              The pod runs ComfyUI on a cloud GPU and joins your server list when it answers. RunPod bills it by the hour
              while it runs; ComfyFleet stops it when it sits idle.
            </p>
            <fieldset className="form-stack pod-form" disabled={running}>
              <Field id="pod-name" label="Name" error={errors.name}>
                {(c) => <input {...c} ref={nameInput} type="text" value={fields.name} onChange={(e) => set("name", e.target.value)} />}
              </Field>
              <Field id="pod-gpu-types" label="GPU types" hint="RunPod GPU ids, comma separated, in order of preference." error={errors.gpuTypes}>
                {(c) => <input {...c} type="text" list="pod-gpu-ids" value={fields.gpuTypes} onChange={(e) => set("gpuTypes", e.target.value)} />}
              </Field>
              {gpus && gpus.length > 0 && (
                <>
                  <datalist id="pod-gpu-ids">
                    {gpus.map((g) => (
                      <option key={g.id} value={g.id} />
                    ))}
                  </datalist>
                  <ul className="pod-gpu-prices" aria-label="Price per hour of the GPU types" data-testid="pod-gpu-prices">
                    {gpuPriceLines(parseGpuTypes(fields.gpuTypes), gpus, fields.cloudType).map((line) => (
                      <li key={line.id} className={line.known ? undefined : "field-error"}>
                        {line.text}
                      </li>
                    ))}
                  </ul>
                </>
              )}
              <div className="field-row">
                <Field id="pod-cloud" label="Cloud" hint="Secure: RunPod's data centres. Community: cheaper hosts.">
                  {(c) => (
                    <select {...c} value={fields.cloudType} onChange={(e) => set("cloudType", e.target.value)}>
                      <option value="SECURE">Secure</option>
                      <option value="COMMUNITY">Community</option>
                      {fields.cloudType !== "SECURE" && fields.cloudType !== "COMMUNITY" && <option value={fields.cloudType}>{fields.cloudType}</option>}
                    </select>
                  )}
                </Field>
                <Field id="pod-disk" label="Container disk (GB)" hint={`${DISK_MIN_GB}–${DISK_MAX_GB} GB; deleted when the pod is terminated.`} error={errors.diskGb}>
                  {(c) => <input {...c} type="text" inputMode="numeric" value={fields.diskGb} onChange={(e) => set("diskGb", e.target.value)} />}
                </Field>
              </div>
              <Field id="pod-image" label="Container image" error={errors.image}>
                {(c) => <input {...c} type="text" className="mono-input" spellCheck={false} value={fields.image} onChange={(e) => set("image", e.target.value)} />}
              </Field>
            </fieldset>
            {creating && !creating.done && (
              <OperationProgress op={creating} now={now} testId="create-progress" fallback="Asking RunPod for a pod…" />
            )}
            {creating?.error && (
              <p className="notice notice-bad" role="alert" data-testid="create-error">
                The pod was not created. {creating.error}
              </p>
            )}
          </div>
          <footer className="modal-footer">
            {running && <span className="field-hint">Closing this keeps it going; the pod shows up in the list.</span>}
            <span className="spacer" />
            <Button onClick={onClose}>{running ? "Hide" : "Cancel"}</Button>
            <Button type="submit" variant="primary" busy={running} data-testid="create-pod-submit">
              {running ? "Creating…" : "Create pod"}
            </Button>
          </footer>
        </form>
      )}
    </Modal>
  );
}
