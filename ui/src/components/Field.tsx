import type { ReactNode } from "react";

export type ControlProps = { id: string; "aria-describedby"?: string; "aria-invalid"?: boolean };

type Props = {
  id: string;
  label: ReactNode;
  hint?: ReactNode;
  error?: string;
  /** data-testid of the error message; defaults to `${id}-error`. */
  errorTestId?: string;
  children: (control: ControlProps) => ReactNode;
};

/** A labelled form control with an optional hint and error, wired up for screen readers. */
export function Field({ id, label, hint, error, errorTestId, children }: Props) {
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  const describedBy = [errorId, hintId].filter(Boolean).join(" ") || undefined;
  return (
    <div className={`field${error ? " field-invalid" : ""}`}>
      <label htmlFor={id} className="field-label">
        {label}
      </label>
      {children({ id, "aria-describedby": describedBy, "aria-invalid": error ? true : undefined })}
      {error && (
        <p id={errorId} className="field-error" data-testid={errorTestId ?? `${id}-error`}>
          {error}
        </p>
      )}
      {hint && (
        <p id={hintId} className="field-hint">
          {hint}
        </p>
      )}
    </div>
  );
}
