import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";

export type ToastKind = "info" | "success" | "error";
type ToastItem = { id: number; kind: ToastKind; text: string; title?: string };
type ShowOptions = { kind?: ToastKind; title?: string };
type ToastApi = { show: (text: string, options?: ShowOptions) => void };

const ToastContext = createContext<ToastApi | null>(null);

const DURATION_MS: Record<ToastKind, number> = { info: 6000, success: 6000, error: 12000 };

export function useToast(): ToastApi {
  const api = useContext(ToastContext);
  if (!api) throw new Error("useToast must be used inside <ToastProvider>");
  return api;
}

/** Short messages in the corner: results of actions, failures (kept longer), events from the core. */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<ToastItem[]>([]);
  const nextId = useRef(1);

  const dismiss = useCallback((id: number) => setToasts((list) => list.filter((t) => t.id !== id)), []);

  const show = useCallback((text: string, options: ShowOptions = {}) => {
    const kind = options.kind ?? "info";
    setToasts((list) => {
      // The same message twice in a row (e.g. an action and the event it caused) shows once.
      const rest = list.filter((t) => t.text !== text);
      return [...rest, { id: nextId.current++, kind, text, title: options.title }].slice(-4);
    });
  }, []);

  const api = useMemo(() => ({ show }), [show]);

  return (
    <ToastContext.Provider value={api}>
      {children}
      <div className="toast-region" aria-live="polite" aria-label="Notifications">
        {toasts.map((t) => (
          <ToastView key={t.id} toast={t} onDismiss={dismiss} />
        ))}
      </div>
    </ToastContext.Provider>
  );
}

function ToastView({ toast, onDismiss }: { toast: ToastItem; onDismiss: (id: number) => void }) {
  const [paused, setPaused] = useState(false);
  useEffect(() => {
    if (paused) return;
    const timer = setTimeout(() => onDismiss(toast.id), DURATION_MS[toast.kind]);
    return () => clearTimeout(timer);
  }, [paused, toast.id, toast.kind, onDismiss]);

  return (
    <div
      className={`toast toast-${toast.kind}`}
      data-testid="toast"
      data-kind={toast.kind}
      role={toast.kind === "error" ? "alert" : "status"}
      onMouseEnter={() => setPaused(true)}
      onMouseLeave={() => setPaused(false)}
      onFocus={() => setPaused(true)}
      onBlur={() => setPaused(false)}
    >
      <div className="toast-text">
        {toast.title && <strong className="toast-title">{toast.title}</strong>}
        <span>{toast.text}</span>
      </div>
      <button type="button" className="toast-close" aria-label="Dismiss notification" onClick={() => onDismiss(toast.id)}>
        ×
      </button>
    </div>
  );
}
