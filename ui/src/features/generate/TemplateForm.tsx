import type { Template } from "../../bindings";
import { Field } from "../../components/Field";
import { randomSeed, SEED_MAX, type TemplateDraft, type TemplateErrors } from "./generateModel";

type Props = {
  templates: Template[];
  draft: TemplateDraft;
  errors: TemplateErrors;
  onChange: (change: Partial<TemplateDraft>) => void;
  onTemplate: (template: Template) => void;
};

function DiceIcon() {
  return (
    <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
      <rect x="3" y="3" width="18" height="18" rx="4" fill="none" stroke="currentColor" strokeWidth="1.8" />
      <circle cx="8" cy="8" r="1.6" fill="currentColor" />
      <circle cx="16" cy="8" r="1.6" fill="currentColor" />
      <circle cx="12" cy="12" r="1.6" fill="currentColor" />
      <circle cx="8" cy="16" r="1.6" fill="currentColor" />
      <circle cx="16" cy="16" r="1.6" fill="currentColor" />
    </svg>
  );
}

/** The fields of a built-in template: what to draw, what to avoid, seed, steps and size. */
export function TemplateForm({ templates, draft, errors, onChange, onTemplate }: Props) {
  const template = templates.find((t) => t.id === draft.templateId);
  return (
    <div className="form-stack">
      <Field
        id="template-select"
        label="Template"
        hint={
          template && (
            <>
              {template.description}
              {template.models.length > 0 && (
                <>
                  {" "}
                  Needs{" "}
                  {template.models.map((m, i) => (
                    <span key={`${m.folder}/${m.name}`}>
                      {i > 0 && ", "}
                      <code>
                        {m.folder}/{m.name}
                      </code>
                    </span>
                  ))}
                  .
                </>
              )}
            </>
          )
        }
      >
        {(control) => (
          <select
            {...control}
            data-testid="template-select"
            value={draft.templateId}
            onChange={(e) => {
              const next = templates.find((t) => t.id === e.target.value);
              if (next) onTemplate(next);
            }}
          >
            {templates.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        )}
      </Field>

      <Field id="prompt" label="Prompt" error={errors.prompt} hint="Press Ctrl+Enter (⌘+Enter on a Mac) to run.">
        {(control) => (
          <textarea
            {...control}
            data-testid="prompt"
            rows={4}
            value={draft.prompt}
            placeholder="a lighthouse on a cliff at sunset, dramatic sky, highly detailed"
            onChange={(e) => onChange({ prompt: e.target.value })}
          />
        )}
      </Field>

      <Field id="negative" label="Negative prompt" hint="What the image should not have. FLUX ignores it.">
        {(control) => (
          <textarea
            {...control}
            data-testid="negative"
            rows={2}
            value={draft.negative}
            placeholder="blurry, low quality, watermark"
            onChange={(e) => onChange({ negative: e.target.value })}
          />
        )}
      </Field>

      <div className="field-grid-4">
        <Field id="seed" label="Seed" error={errors.seed}>
          {(control) => (
            <div className="input-with-button">
              <input
                {...control}
                type="text"
                inputMode="numeric"
                data-testid="seed"
                value={draft.seed}
                placeholder="Random"
                title={`Empty = a new random seed for every run; a number from 0 to ${SEED_MAX} repeats an image`}
                onChange={(e) => onChange({ seed: e.target.value })}
              />
              <button
                type="button"
                className="icon-button"
                data-testid="seed-dice"
                aria-label="Pick a random seed"
                title="Pick a random seed (to repeat it later)"
                onClick={() => onChange({ seed: String(randomSeed()) })}
              >
                <DiceIcon />
              </button>
            </div>
          )}
        </Field>
        <Field id="steps" label="Steps" error={errors.steps}>
          {(control) => (
            <input {...control} type="number" min={1} max={150} data-testid="steps" value={draft.steps} onChange={(e) => onChange({ steps: e.target.value })} />
          )}
        </Field>
        <Field id="width" label="Width" error={errors.width}>
          {(control) => (
            <input {...control} type="number" min={64} max={4096} step={8} data-testid="width" value={draft.width} onChange={(e) => onChange({ width: e.target.value })} />
          )}
        </Field>
        <Field id="height" label="Height" error={errors.height}>
          {(control) => (
            <input {...control} type="number" min={64} max={4096} step={8} data-testid="height" value={draft.height} onChange={(e) => onChange({ height: e.target.value })} />
          )}
        </Field>
      </div>
    </div>
  );
}
