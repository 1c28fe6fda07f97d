import type { ReactNode } from "react";

type Props = { title: string; children?: ReactNode; actions?: ReactNode; testId?: string };

/** What a list shows when it has nothing in it: what this is and what to do next. */
export function EmptyState({ title, children, actions, testId }: Props) {
  return (
    <section className="empty-state" data-testid={testId} aria-label={title}>
      <h2 className="empty-title">{title}</h2>
      {children && <div className="empty-body">{children}</div>}
      {actions && <div className="empty-actions">{actions}</div>}
    </section>
  );
}
