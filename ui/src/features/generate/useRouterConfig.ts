import { useCallback, useEffect, useRef, useState } from "react";
import { commands, type Policy, type RouterConfig } from "../../bindings";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";

export type RouterState = {
  config: RouterConfig | null;
  /** Why the routing settings could not be loaded. */
  error: string | null;
  saving: boolean;
  setPolicy: (policy: Policy) => Promise<void>;
};

/** The router's settings: loaded once, the policy saved as soon as it is chosen (put back if that fails). */
export function useRouterConfig(): RouterState {
  const toast = useToast();
  const [config, setConfig] = useState<RouterConfig | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const mounted = useRef(true);

  useEffect(() => {
    mounted.current = true;
    call(commands.routerGet())
      .then((c) => mounted.current && setConfig(c))
      .catch((e) => mounted.current && setError(errorMessage(e)));
    return () => {
      mounted.current = false;
    };
  }, []);

  const setPolicy = useCallback(
    async (policy: Policy) => {
      if (!config || policy === config.policy) return;
      const before = config;
      setConfig({ ...config, policy });
      setSaving(true);
      try {
        const saved = await call(commands.routerSet({ ...before, policy }));
        if (mounted.current) setConfig(saved);
      } catch (e) {
        if (mounted.current) setConfig(before);
        toast.show(errorMessage(e), { kind: "error", title: "The routing policy was not changed" });
      } finally {
        if (mounted.current) setSaving(false);
      }
    },
    [config, toast],
  );

  return { config, error, saving, setPolicy };
}
