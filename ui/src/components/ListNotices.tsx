// What a list page says when its data is not there: it could not be loaded (with Try again), or its live changes
// stopped arriving (with Reconnect). One look and wording for every page and list.
import { Button } from "./Button";

type NoticeProps = { title: string; error: string; testId?: string };

function ListNotice({ bad, title, error, action, onAction, testId }: NoticeProps & { bad: boolean; action: string; onAction: () => void }) {
  return (
    <div className={`notice ${bad ? "notice-bad" : "notice-warn"} list-error`} role={bad ? "alert" : "status"} data-testid={testId}>
      <p>
        <strong>{title}</strong> {error}
      </p>
      <Button size="sm" onClick={onAction}>
        {action}
      </Button>
    </div>
  );
}

/** The list could not be loaded: `title` says what ("The jobs could not be loaded."), `error` why. */
export function LoadFailedNotice({ onRetry, ...props }: NoticeProps & { onRetry: () => void }) {
  return <ListNotice bad action="Try again" onAction={onRetry} {...props} />;
}

/** Live changes stopped: `title` says which ("Live updates are off."), `error` why. */
export function LiveOffNotice({ onReconnect, ...props }: NoticeProps & { onReconnect: () => void }) {
  return <ListNotice bad={false} action="Reconnect" onAction={onReconnect} {...props} />;
}
