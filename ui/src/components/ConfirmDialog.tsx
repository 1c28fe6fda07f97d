import { useId, useRef, type ReactNode } from "react";
import { Button } from "./Button";
import { Modal } from "./Modal";

type Props = {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  cancelLabel?: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
  testId?: string;
};

/** Asks before doing something that cannot be undone. Focus starts on Cancel. */
export function ConfirmDialog({ title, children, confirmLabel, cancelLabel = "Cancel", danger, busy, onConfirm, onCancel, testId = "confirm" }: Props) {
  const cancel = useRef<HTMLButtonElement>(null);
  const bodyId = useId();
  return (
    <Modal title={title} onClose={onCancel} initialFocus={cancel} testId={testId} size="sm" role="alertdialog" describedBy={bodyId}>
      <div className="modal-body" id={bodyId}>
        {children}
      </div>
      <footer className="modal-footer">
        <span className="spacer" />
        <Button ref={cancel} onClick={onCancel} data-testid={`${testId}-no`} disabled={busy}>
          {cancelLabel}
        </Button>
        <Button variant={danger ? "danger" : "primary"} onClick={onConfirm} busy={busy} data-testid={`${testId}-yes`}>
          {confirmLabel}
        </Button>
      </footer>
    </Modal>
  );
}
