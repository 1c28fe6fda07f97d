import type { Policy } from "../../bindings";
import { POLICY_HINTS, POLICY_LABELS } from "./generateModel";
import type { RouterState } from "./useRouterConfig";

const POLICIES = Object.keys(POLICY_LABELS) as Policy[];

/** How Auto spreads jobs over the fleet; saved immediately. */
export function RoutingPolicySelect({ router }: { router: RouterState }) {
  const { config, error, saving, setPolicy } = router;
  return (
    <label className="inline-field routing-policy" htmlFor="policy-select" title={error ?? (config ? POLICY_HINTS[config.policy] : undefined)}>
      <span className="muted small">Auto routing</span>
      <select
        id="policy-select"
        className="select-sm"
        data-testid="policy-select"
        value={config?.policy ?? ""}
        disabled={!config || saving}
        aria-invalid={error ? true : undefined}
        onChange={(e) => void setPolicy(e.target.value as Policy)}
      >
        {!config && <option value="">{error ? "Unavailable" : "Loading…"}</option>}
        {POLICIES.map((p) => (
          <option key={p} value={p}>
            {POLICY_LABELS[p]}
          </option>
        ))}
      </select>
    </label>
  );
}
