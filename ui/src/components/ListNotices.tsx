// What a list page says when its data is not there: it could not be loaded (with Try again), or its live changes
// stopped arriving (with Reconnect). One look and wording for Jobs, Downloads and the Gallery.
import { Button } from "./Button";

/** The list could not be loaded: `title` says what ("The jobs could not be loaded."), `error` why. */
export function LoadFailedNotice({ title, error, onRetry, testId }: { title: string; error: string; onRetry: () => void; testId?: string }) {
  return (
    <div className="notice notice-bad list-error" role="alert" data-testid={testId}>
      <p>
        <strong>{title}</strong> {error}
      </p>
      <Button size="sm" onClick={onRetry}>
        Try again
      </Button>
    </div>
  );
}

/** Live changes stopped: `title` says which ("Live updates are off."), `error` why. */
export function LiveOffNotice({ title, error, onReconnect, testId }: { title: string; error: string; onReconnect: () => void; testId: string }) {
  return (
    <div className="notice notice-warn list-error" role="status" data-testid={testId}>
      <p>
        <strong>{title}</strong> {error}
      </p>
      <Button size="sm" onClick={onReconnect}>
        Reconnect
      </Button>
    </div>
  );
}
