import { render } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactElement } from "react";
import { App } from "../App";
import { ToastProvider } from "../components/Toast";
import { ServersProvider } from "../features/servers/ServersContext";

/** Renders inside the same providers the app uses; returns a userEvent instance too. */
export function renderWithProviders(ui: ReactElement) {
  const user = userEvent.setup();
  const result = render(
    <ToastProvider>
      <ServersProvider>{ui}</ServersProvider>
    </ToastProvider>,
  );
  return { user, ...result };
}

export function renderApp() {
  const user = userEvent.setup();
  return { user, ...render(<App />) };
}
