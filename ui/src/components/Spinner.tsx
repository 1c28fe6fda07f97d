import type { ReactNode } from "react";

export function Spinner({ label }: { label?: string }) {
  return <span className="spinner" role={label ? "status" : undefined} aria-label={label} aria-hidden={label ? undefined : true} />;
}

/** A line that says what is loading, with a spinner; screen readers announce it. */
export function Loading({ children }: { children: ReactNode }) {
  return (
    <div className="loading" role="status">
      <Spinner /> {children}
    </div>
  );
}
