// The cost monitor commands of the fake backend: pass `costs.handlers` to `installFakeBackend`. Reports are given per
// month; a month without one answers an empty report. Caps answer their use the way the core computes it.
import type { CapStatus, Caps, Group, PriceSettings, Report, ServerlessClass, Totals } from "../bindings";

export function totals(overrides: Partial<Totals> = {}): Totals {
  return {
    jobs: 0,
    succeeded: 0,
    success_percent: 0,
    mean_ms: 0,
    spent_micros: 0,
    cloud_spent_micros: 0,
    saved_micros: 0,
    idle_ms: 0,
    idle_micros: 0,
    failovers: 0,
    ...overrides,
  };
}

export function group(key: string, overrides: Partial<Totals> = {}): Group {
  return { key, totals: totals(overrides) };
}

export function report(overrides: Partial<Report> = {}): Report {
  return {
    span: { from_ms: 0, to_ms: 0 },
    totals: totals(),
    by_day: [],
    by_week: [],
    by_backend: [],
    by_server: [],
    by_day_backend: [],
    projection_micros: 0,
    ...overrides,
  };
}

/** A month with local, serverless and pod spend on two days (the numbers the tests check). */
export function sampleReport(): Report {
  return report({
    totals: totals({
      jobs: 42,
      succeeded: 40,
      success_percent: 95,
      mean_ms: 12_400,
      spent_micros: 12_345_678,
      cloud_spent_micros: 12_000_000,
      saved_micros: 3_456_789,
      idle_ms: 600_000,
      idle_micros: 115_000,
    }),
    by_backend: [
      group("serverless", { jobs: 10, succeeded: 9, success_percent: 90, mean_ms: 30_000, spent_micros: 4_500_000, cloud_spent_micros: 4_500_000, failovers: 3 }),
      group("local", { jobs: 30, succeeded: 30, success_percent: 100, mean_ms: 8_000, spent_micros: 345_678, saved_micros: 3_456_789 }),
      group("pod", { jobs: 2, succeeded: 1, success_percent: 50, mean_ms: 20_000, spent_micros: 7_500_000, cloud_spent_micros: 7_500_000, idle_ms: 600_000, idle_micros: 115_000 }),
    ],
    by_server: [
      group("id-local", { jobs: 30, succeeded: 30, success_percent: 100, mean_ms: 8_000, spent_micros: 345_678, saved_micros: 3_456_789 }),
      group("id-endpoint", { jobs: 10, succeeded: 9, success_percent: 90, mean_ms: 30_000, spent_micros: 4_500_000 }),
      group("pod:abc123", { spent_micros: 7_500_000, idle_ms: 600_000, idle_micros: 115_000 }),
      group("id-gone", { jobs: 2, succeeded: 1, success_percent: 50, mean_ms: 20_000 }),
    ],
    by_day_backend: [
      group("2026-12-01/local", { jobs: 20, spent_micros: 200_000 }),
      group("2026-12-01/serverless", { jobs: 4, spent_micros: 1_500_000 }),
      group("2026-12-03/local", { jobs: 10, spent_micros: 145_678 }),
      group("2026-12-03/serverless", { jobs: 6, spent_micros: 3_000_000 }),
      group("2026-12-03/pod", { jobs: 2, spent_micros: 7_500_000 }),
    ],
    projection_micros: 95_678_901,
  });
}

/** What `costs_gpu_classes` answers: a few classes, ADA_24 at a refreshed price ($0.00033/s, not the shipped $0.00031). */
export const GPU_CLASSES: ServerlessClass[] = [
  { id: "AMPERE_16", gpus: "A4000, A4500, RTX 4000 (16 GB)", per_sec_micros: 160 },
  { id: "AMPERE_24", gpus: "L4, A5000, 3090 (24 GB)", per_sec_micros: 190 },
  { id: "ADA_24", gpus: "4090 (24 GB PRO)", per_sec_micros: 330 },
  { id: "AMPERE_80", gpus: "A100 (80 GB)", per_sec_micros: 760 },
];

export const DEFAULT_PRICES: PriceSettings = {
  electricity_micros_per_kwh: 0,
  reference_class: "ADA_24",
  reference_speed_percent: 100,
  lan_per_hr_micros: {},
};

function percent(used: number, cap: number): number {
  if (cap === 0) return used === 0 ? 0 : 100;
  return Math.floor((used * 100) / cap);
}

type Use = { spentToday: number; reservedToday: number; spentMonth: number; reservedMonth: number };

export function capStatus(caps: Required<Caps>, use: Use): CapStatus {
  return {
    caps,
    spent_today_micros: use.spentToday,
    reserved_today_micros: use.reservedToday,
    spent_month_micros: use.spentMonth,
    reserved_month_micros: use.reservedMonth,
    daily_percent: percent(use.spentToday + use.reservedToday, caps.daily_micros),
    monthly_percent: percent(use.spentMonth + use.reservedMonth, caps.monthly_micros),
  };
}

export function fakeCosts(
  init: {
    current?: string;
    reports?: Record<string, Report>;
    caps?: Required<Caps>;
    use?: Partial<Use>;
    prices?: PriceSettings;
    classes?: ServerlessClass[];
  } = {},
) {
  const state = {
    current: init.current ?? "2026-12",
    reports: { ...(init.reports ?? {}) },
    caps: init.caps ?? { daily_micros: 5_000_000, monthly_micros: 50_000_000 },
    use: { spentToday: 0, reservedToday: 0, spentMonth: 0, reservedMonth: 0, ...init.use },
    prices: init.prices ?? DEFAULT_PRICES,
    classes: init.classes ?? GPU_CLASSES,
  };

  const handlers: Record<string, (args: Record<string, unknown>) => unknown> = {
    costs_report: (a) => {
      const month = (a.month as string | null) ?? state.current;
      return { month, report: state.reports[month] ?? report() };
    },
    costs_caps: () => capStatus(state.caps, state.use),
    costs_set_caps: (a) => {
      const caps = a.caps as Caps;
      state.caps = { daily_micros: caps.daily_micros ?? 5_000_000, monthly_micros: caps.monthly_micros ?? 50_000_000 };
      return capStatus(state.caps, state.use);
    },
    costs_prices: () => state.prices,
    costs_set_prices: (a) => {
      state.prices = a.prices as PriceSettings;
      return state.prices;
    },
    costs_gpu_classes: () => state.classes,
    costs_export_csv: (a) => a.path,
  };

  return { state, handlers };
}
