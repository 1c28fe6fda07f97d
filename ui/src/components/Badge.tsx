import type { HTMLAttributes, ReactNode } from "react";

export type BadgeTone = "ok" | "bad" | "warn" | "info" | "neutral" | "accent";

type Props = HTMLAttributes<HTMLSpanElement> & { tone?: BadgeTone; dot?: boolean; children: ReactNode };

export function Badge({ tone = "neutral", dot = false, className, children, ...rest }: Props) {
  return (
    <span className={`badge badge-${tone}${className ? ` ${className}` : ""}`} {...rest}>
      {dot && <span className="badge-dot" aria-hidden="true" />}
      {children}
    </span>
  );
}
