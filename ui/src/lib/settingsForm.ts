// The state every small settings form has: its text fields, whether it is saving, saved, or what went wrong.
// Editing a field clears "saved" and the error; saving shows the core's answer or why it failed.
import { useCallback, useState } from "react";
import { errorMessage } from "./errors";

export function useSettingsForm<F>(initial: () => F) {
  const [fields, setFields] = useState<F>(initial);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);

  const set = useCallback(<K extends keyof F>(key: K, value: F[K]) => {
    setFields((f) => ({ ...f, [key]: value }));
    setSaved(false);
    setError(null);
  }, []);

  /** Shows what is wrong with the fields, without saving. */
  const invalid = useCallback((problem: string) => setError(problem), []);

  /** Runs `store`; marks the form saved and answers what was stored, or shows `failure` and why (answering undefined). */
  const save = useCallback(async <T>(store: () => Promise<T>, failure: string): Promise<T | undefined> => {
    setSaving(true);
    setError(null);
    try {
      const stored = await store();
      setSaved(true);
      return stored;
    } catch (err) {
      setError(`${failure} ${errorMessage(err)}`);
      return undefined;
    } finally {
      setSaving(false);
    }
  }, []);

  return { fields, setFields, set, saving, saved, error, invalid, save };
}
