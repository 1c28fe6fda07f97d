import { act, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { installFakeBackend, job, server, succeededJob, uiError } from "../../test/fakeBackend";
import { fakeCosts, sampleReport } from "../../test/fakeCosts";
import { renderApp, renderWithProviders } from "../../test/render";
import { CostsPage } from "./CostsPage";

function withCosts(init: Parameters<typeof fakeCosts>[0] = {}, handlers: Record<string, (args: Record<string, unknown>) => unknown> = {}) {
  const costs = fakeCosts({ reports: { "2026-12": sampleReport() }, ...init });
  const fake = installFakeBackend(
    { servers: [server({ name: "Local", id: "id-local" }), server({ name: "Flux endpoint", id: "id-endpoint", kind: "runpod_serverless" })] },
    { ...costs.handlers, ...handlers },
  );
  return { costs, fake };
}

describe("the Cost Monitor page", () => {
  it("is in the main navigation", async () => {
    withCosts();
    const { user } = renderApp();
    await user.click(screen.getByTestId("nav-costs"));
    expect(await screen.findByTestId("costs-page")).toBeInTheDocument();
    expect(screen.getByRole("heading", { name: "Costs" })).toBeInTheDocument();
  });

  it("shows this month's jobs, spend, savings and projection in exact dollars", async () => {
    const { fake } = withCosts();
    renderWithProviders(<CostsPage />);
    expect(await screen.findByTestId("costs-jobs")).toHaveTextContent("42");
    expect(screen.getByTestId("costs-spent")).toHaveTextContent("$12.35");
    expect(screen.getByTestId("costs-saved")).toHaveTextContent("$3.46");
    expect(screen.getByTestId("costs-projection")).toHaveTextContent("$95.68");
    expect(screen.getByText("Saved thanks to your local GPU")).toBeInTheDocument();
    expect(screen.getByText("Month-end projection")).toBeInTheDocument();
    expect(screen.getByTestId("costs-month")).toHaveTextContent("December 2026");
    expect(screen.getByTestId("costs-idle")).toHaveTextContent("Idle pods cost $0.12");
    expect(fake.callsTo("costs_report")[0].args).toEqual({ month: null });
  });

  it("shows a month of a few sub-cent cloud jobs to the hundredth of a cent, not as $0.00", async () => {
    const small = sampleReport();
    small.totals = { ...small.totals, spent_micros: 4_100, cloud_spent_micros: 4_100, saved_micros: 0, idle_micros: 0, idle_ms: 0 };
    small.projection_micros = 9_150;
    withCosts({ reports: { "2026-12": small } });
    renderWithProviders(<CostsPage />);
    expect(await screen.findByTestId("costs-spent")).toHaveTextContent("$0.0041");
    expect(screen.getByText("$0.0041 in the cloud")).toBeInTheDocument();
    expect(screen.getByTestId("costs-saved")).toHaveTextContent("$0.00");
    expect(screen.getByTestId("costs-projection")).toHaveTextContent("$0.0092");
  });

  it("has the chart's figures per day and backend in its table", async () => {
    withCosts();
    renderWithProviders(<CostsPage />);
    const table = await screen.findByTestId("costs-chart-table");
    const headers = within(table)
      .getAllByRole("columnheader")
      .map((h) => h.textContent);
    expect(headers).toEqual(["Day", "Local GPU", "RunPod serverless", "RunPod pods", "Total"]);
    expect(within(table).getAllByRole("row")).toHaveLength(3); // the header and the two days with spend
    expect(screen.getByTestId("chart-cell-2026-12-01-local")).toHaveTextContent("$0.20");
    expect(screen.getByTestId("chart-cell-2026-12-01-serverless")).toHaveTextContent("$1.50");
    expect(screen.getByTestId("chart-cell-2026-12-01-pod")).toHaveTextContent("$0.00");
    expect(screen.getByTestId("chart-cell-2026-12-03-local")).toHaveTextContent("$0.15");
    expect(screen.getByTestId("chart-cell-2026-12-03-serverless")).toHaveTextContent("$3.00");
    expect(screen.getByTestId("chart-cell-2026-12-03-pod")).toHaveTextContent("$7.50");
    expect(screen.getByTestId("chart-cell-2026-12-03-total")).toHaveTextContent("$10.65");
  });

  it("breaks the month down by backend and by named server, pods' uptime on their own rows", async () => {
    withCosts();
    renderWithProviders(<CostsPage />);
    const breakdown = await screen.findByTestId("costs-breakdown");
    const local = within(breakdown).getByTestId("breakdown-backend-local");
    expect(local).toHaveTextContent("Local GPU");
    expect(local).toHaveTextContent("30");
    expect(local).toHaveTextContent("100 %");
    expect(local).toHaveTextContent("8.0 s");
    expect(within(local).getByTestId("breakdown-backend-local-spent")).toHaveTextContent("$0.35");
    expect(within(local).getByTestId("breakdown-backend-local-saved")).toHaveTextContent("$3.46");
    expect(within(breakdown).getByTestId("breakdown-backend-pod-idle")).toHaveTextContent("$0.12 (10 min)");
    expect(within(breakdown).getByTestId("breakdown-backend-serverless-failovers")).toHaveTextContent("3");
    const backends = within(screen.getByTestId("costs-breakdown-backends")).getAllByRole("rowheader").map((h) => h.textContent);
    expect(backends).toEqual(["Local GPU", "RunPod serverless", "RunPod pods"]);

    await waitFor(() => expect(within(breakdown).getByTestId("breakdown-server-id-endpoint")).toHaveTextContent("Flux endpoint"));
    expect(within(breakdown).getByTestId("breakdown-server-id-local")).toHaveTextContent("Local");
    expect(within(breakdown).getByTestId("breakdown-server-pod:abc123")).toHaveTextContent("Pod abc123");
    expect(within(breakdown).getByTestId("breakdown-server-pod:abc123-spent")).toHaveTextContent("$7.50");
    expect(within(breakdown).getByTestId("breakdown-server-id-gone")).toHaveTextContent("id-gone (removed)");
  });

  it("asks for the previous and next month, and cannot go past this month", async () => {
    const { fake } = withCosts({ reports: { "2026-12": sampleReport(), "2026-11": sampleReport() } });
    const { user } = renderWithProviders(<CostsPage />);
    await screen.findByTestId("costs-jobs");
    expect(screen.getByTestId("costs-next-month")).toBeDisabled();

    await user.click(screen.getByTestId("costs-prev-month"));
    await waitFor(() => expect(screen.getByTestId("costs-month")).toHaveTextContent("November 2026"));
    expect(fake.callsTo("costs_report").at(-1)?.args).toEqual({ month: "2026-11" });
    expect(screen.getByText("Month total")).toBeInTheDocument();

    await user.click(screen.getByTestId("costs-prev-month"));
    await waitFor(() => expect(screen.getByTestId("costs-month")).toHaveTextContent("October 2026"));
    expect(fake.callsTo("costs_report").at(-1)?.args).toEqual({ month: "2026-10" });
    expect(screen.getByTestId("costs-empty")).toHaveTextContent("No jobs in October 2026");

    await user.click(screen.getByTestId("costs-next-month"));
    await waitFor(() => expect(screen.getByTestId("costs-month")).toHaveTextContent("November 2026"));
    expect(fake.callsTo("costs_report").at(-1)?.args).toEqual({ month: "2026-11" });

    await user.click(screen.getByTestId("costs-next-month"));
    await waitFor(() => expect(screen.getByTestId("costs-month")).toHaveTextContent("December 2026"));
    expect(fake.callsTo("costs_report").at(-1)?.args).toEqual({ month: null });
    expect(screen.getByTestId("costs-next-month")).toBeDisabled();
  });

  it("loads the month again when a job finishes", async () => {
    const { fake, costs } = withCosts({ reports: {} });
    renderWithProviders(<CostsPage />);
    await screen.findByTestId("costs-empty");
    await waitFor(() => expect(fake.subscribers()).toBe(1));
    const before = fake.callsTo("costs_report").length;

    costs.state.reports["2026-12"] = sampleReport();
    await act(async () => fake.pushJobUpdate({ kind: "changed", job: job({ id: "run", state: "running" }) }));
    expect(fake.callsTo("costs_report")).toHaveLength(before);
    await act(async () => fake.pushJobUpdate({ kind: "changed", job: succeededJob("run", ["x.png"]) }));
    expect(await screen.findByTestId("costs-spent")).toHaveTextContent("$12.35");
    expect(fake.callsTo("costs_report")).toHaveLength(before + 1);
  });

  it("says what to do when the month has no jobs", async () => {
    withCosts({ reports: {} });
    renderWithProviders(<CostsPage onGoToGenerate={() => {}} />);
    const empty = await screen.findByTestId("costs-empty");
    expect(empty).toHaveTextContent("No jobs in December 2026");
    expect(empty).toHaveTextContent("Run one from Generate");
    expect(within(empty).getByRole("button", { name: "Go to Generate" })).toBeInTheDocument();
    expect(screen.queryByTestId("costs-chart")).not.toBeInTheDocument();
    expect(screen.getByTestId("costs-export")).toBeDisabled();
    // The caps can be set before anything ran.
    expect(await screen.findByTestId("cap-daily")).toBeInTheDocument();
  });

  it("says why the costs could not be loaded", async () => {
    withCosts({}, { costs_report: () => { throw uiError("The database is locked by another ComfyFleet. Close it and try again.", "store.locked"); } });
    renderWithProviders(<CostsPage />);
    expect(await screen.findByTestId("costs-load-error")).toHaveTextContent("The database is locked by another ComfyFleet");
  });

  it("exports the month as CSV to the path chosen in the save dialog", async () => {
    const { fake } = withCosts();
    fake.state.dialogSavePath = "/home/artist/costs-december.csv";
    const { user } = renderWithProviders(<CostsPage />);
    await screen.findByTestId("costs-jobs");
    await user.click(screen.getByTestId("costs-export"));
    await waitFor(() => expect(fake.callsTo("costs_export_csv")).toHaveLength(1));
    expect(fake.callsTo("costs_export_csv")[0].args).toEqual({ month: "2026-12", path: "/home/artist/costs-december.csv" });
    expect(fake.callsTo("plugin:dialog|save")[0].args).toMatchObject({ options: { defaultPath: "comfyfleet-costs-2026-12.csv" } });
    expect(await screen.findByTestId("toast")).toHaveTextContent("Exported the costs of December 2026 to /home/artist/costs-december.csv.");
  });

  it("does not export when the save dialog is cancelled", async () => {
    const { fake } = withCosts();
    fake.state.dialogSavePath = null;
    const { user } = renderWithProviders(<CostsPage />);
    await screen.findByTestId("costs-jobs");
    await user.click(screen.getByTestId("costs-export"));
    await waitFor(() => expect(fake.callsTo("plugin:dialog|save")).toHaveLength(1));
    expect(fake.callsTo("costs_export_csv")).toHaveLength(0);
  });
});

describe("cloud spending caps", () => {
  it("shows what is used of each cap and saves new caps exactly to the micro-dollar", async () => {
    const { fake } = withCosts({ use: { spentToday: 1_200_000, reservedToday: 300_000, spentMonth: 12_000_000, reservedMonth: 300_000 } });
    const { user } = renderWithProviders(<CostsPage />);
    const daily = await screen.findByTestId("cap-daily");
    expect(within(daily).getByTestId("cap-daily-text")).toHaveTextContent("$1.20 spent + $0.30 reserved of $5.00 today · 30 %");
    expect(within(daily).getByRole("progressbar")).toHaveAttribute("aria-valuenow", "30");
    expect(daily).toHaveAttribute("data-level", "ok");
    expect(within(screen.getByTestId("cap-monthly")).getByTestId("cap-monthly-text")).toHaveTextContent("$12.00 spent + $0.30 reserved of $50.00 this month · 24 %");
    expect(screen.getByTestId("cap-daily-input")).toHaveValue("5.00");
    expect(screen.getByTestId("cap-monthly-input")).toHaveValue("50.00");

    await user.clear(screen.getByTestId("cap-daily-input"));
    await user.type(screen.getByTestId("cap-daily-input"), "1.234567");
    await user.clear(screen.getByTestId("cap-monthly-input"));
    await user.type(screen.getByTestId("cap-monthly-input"), "$20.1");
    await user.click(screen.getByTestId("caps-save"));

    await waitFor(() => expect(fake.callsTo("costs_set_caps")).toHaveLength(1));
    expect(fake.callsTo("costs_set_caps")[0].args).toEqual({ caps: { daily_micros: 1_234_567, monthly_micros: 20_100_000 } });
    expect(await screen.findByTestId("caps-saved")).toHaveTextContent("Saved.");
    // 1.5 of 1.234567 is past the daily cap.
    expect(screen.getByTestId("cap-daily")).toHaveAttribute("data-level", "full");
    expect(screen.getByTestId("cap-daily-input")).toHaveValue("1.234567");
  });

  it("refuses a cap that is not an amount, without calling the core", async () => {
    const { fake } = withCosts();
    const { user } = renderWithProviders(<CostsPage />);
    await user.clear(await screen.findByTestId("cap-daily-input"));
    await user.type(screen.getByTestId("cap-daily-input"), "lots");
    await user.click(screen.getByTestId("caps-save"));
    expect(await screen.findByTestId("caps-error")).toHaveTextContent("Type the daily cap in dollars");
    expect(fake.callsTo("costs_set_caps")).toHaveLength(0);
  });

  it("says a cap of 0 keeps every job local", async () => {
    withCosts({ caps: { daily_micros: 0, monthly_micros: 50_000_000 } });
    renderWithProviders(<CostsPage />);
    expect(await screen.findByTestId("cap-daily-zero")).toHaveTextContent("every job runs on your local GPU");
    expect(screen.getByTestId("cap-daily-input")).toHaveValue("0.00");
    expect(screen.queryByTestId("cap-monthly-zero")).not.toBeInTheDocument();
  });

  it("warns at 80 % of a cap", async () => {
    withCosts({ use: { spentToday: 3_500_000, reservedToday: 500_000, spentMonth: 4_000_000 } });
    renderWithProviders(<CostsPage />);
    const daily = await screen.findByTestId("cap-daily");
    expect(daily).toHaveAttribute("data-level", "warn");
    expect(within(daily).getByRole("progressbar")).toHaveClass("progress-warn");
    expect(within(daily).getByTestId("cap-daily-warning")).toHaveTextContent("80 % of the daily cloud spending limit is used.");
    expect(within(daily).queryByTestId("cap-daily-reached")).not.toBeInTheDocument();
    expect(screen.getByTestId("cap-monthly")).toHaveAttribute("data-level", "ok");
  });

  it("says the limit is reached at 100 %, daily and monthly", async () => {
    withCosts({ use: { spentToday: 5_000_000, spentMonth: 50_000_000 } });
    renderWithProviders(<CostsPage />);
    const daily = await screen.findByTestId("cap-daily");
    expect(daily).toHaveAttribute("data-level", "full");
    expect(within(daily).getByRole("progressbar")).toHaveClass("progress-bad");
    expect(within(daily).getByRole("progressbar")).toHaveAttribute("aria-valuenow", "100");
    expect(within(daily).getByTestId("cap-daily-reached")).toHaveTextContent(
      "Daily cloud spending limit reached — using your local GPU, or try again tomorrow",
    );
    expect(within(screen.getByTestId("cap-monthly")).getByTestId("cap-monthly-reached")).toHaveTextContent(
      "Monthly cloud spending limit reached — using your local GPU, or try again next month",
    );
  });
});

describe("prices", () => {
  it("says local jobs are free until an electricity price is set, and saves prices exactly", async () => {
    const { fake } = withCosts({ prices: { electricity_micros_per_kwh: 0, reference_class: "ADA_24", reference_speed_percent: 100, lan_per_hr_micros: { "id-lan": 400_000 } } });
    const { user } = renderWithProviders(<CostsPage />);
    expect(await screen.findByTestId("price-electricity-hint")).toHaveTextContent(/local jobs are free unless you set a price/i);
    expect(screen.getByTestId("price-reference")).toHaveValue("ADA_24");

    await user.clear(screen.getByTestId("price-electricity"));
    await user.type(screen.getByTestId("price-electricity"), "0.285");
    await user.selectOptions(screen.getByTestId("price-reference"), "AMPERE_24");
    await user.clear(screen.getByTestId("price-speed"));
    await user.type(screen.getByTestId("price-speed"), "80");
    await user.click(screen.getByTestId("prices-save"));

    await waitFor(() => expect(fake.callsTo("costs_set_prices")).toHaveLength(1));
    expect(fake.callsTo("costs_set_prices")[0].args).toEqual({
      prices: { electricity_micros_per_kwh: 285_000, reference_class: "AMPERE_24", reference_speed_percent: 80, lan_per_hr_micros: { "id-lan": 400_000 } },
    });
    expect(await screen.findByTestId("prices-saved")).toBeInTheDocument();
    expect(screen.getByTestId("price-electricity-hint")).not.toHaveTextContent("free");
  });

  it("offers the core's cloud GPU classes at today's prices as the reference, keeping an unknown current choice", async () => {
    withCosts({ prices: { electricity_micros_per_kwh: 0, reference_class: "ADA_32_PRO", reference_speed_percent: 100, lan_per_hr_micros: {} } });
    renderWithProviders(<CostsPage />);
    const select = await screen.findByTestId("price-reference");
    await waitFor(() => expect(within(select).getAllByRole("option")).toHaveLength(5));
    const options = within(select).getAllByRole("option").map((o) => o.textContent);
    // The current choice, not among the classes priced, stays selected and listed first.
    expect(select).toHaveValue("ADA_32_PRO");
    expect(options[0]).toBe("ADA_32_PRO");
    // The refreshed per-second price ($0.00033/s), as dollars per hour.
    expect(options).toContain("4090 (24 GB PRO) · RunPod serverless $1.188/h");
    expect(options).toContain("A100 (80 GB) · RunPod serverless $2.736/h");
  });

  it("sets a LAN server's hourly rate exactly, and leaves this computer and cloud servers out", async () => {
    const costs = fakeCosts({ reports: { "2026-12": sampleReport() } });
    const studio = server({ name: "Studio", id: "id-studio", url: "http://192.168.1.20:8188" });
    const fake = installFakeBackend(
      { servers: [server({ name: "Local", id: "id-local" }), studio, server({ name: "Flux endpoint", id: "id-endpoint", kind: "runpod_serverless" })] },
      costs.handlers,
    );
    const { user } = renderWithProviders(<CostsPage />);
    const rates = await screen.findByTestId("lan-rates");
    expect(within(rates).getByText("Studio")).toBeInTheDocument();
    expect(within(rates).queryByText("Local")).not.toBeInTheDocument();
    expect(within(rates).queryByText("Flux endpoint")).not.toBeInTheDocument();
    await user.type(screen.getByTestId("lan-rate-id-studio"), "1.20");
    await user.click(screen.getByTestId("prices-save"));
    await waitFor(() => expect(fake.callsTo("costs_set_prices")).toHaveLength(1));
    const sent = fake.callsTo("costs_set_prices")[0].args.prices as { lan_per_hr_micros: Record<string, number> };
    expect(sent.lan_per_hr_micros).toEqual({ "id-studio": 1_200_000 });
  });
});
