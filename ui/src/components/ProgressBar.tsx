import { percent } from "../lib/format";

type Props = {
  /** 0..1; null shows an indeterminate bar (working, amount unknown). */
  value: number | null;
  label: string;
  tone?: "accent" | "ok" | "warn" | "bad";
  size?: "sm" | "md";
  testId?: string;
};

/** A progress bar that screen readers announce as one; `aria-valuenow` is the whole percentage. */
export function ProgressBar({ value, label, tone = "accent", size = "md", testId }: Props) {
  const pct = value == null ? null : percent(value);
  return (
    <div
      className={`progress progress-${tone} progress-${size}${pct == null ? " progress-indeterminate" : ""}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={pct ?? undefined}
      data-testid={testId}
      data-value={value ?? undefined}
    >
      <span className="progress-fill" style={pct == null ? undefined : { width: `${pct}%` }} />
    </div>
  );
}
