import { render } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactElement } from "react";
import { App, type Page } from "../App";
import { ToastProvider } from "../components/Toast";
import { DownloadsProvider } from "../features/downloads/DownloadsContext";
import { GalleryImagesProvider } from "../features/gallery/GalleryImages";
import { GenerateSessionProvider } from "../features/generate/GenerateSession";
import { InstallProvider } from "../features/install/InstallContext";
import { JobsProvider } from "../features/jobs/JobsContext";
import { ServersProvider } from "../features/servers/ServersContext";

/** Renders inside the same providers the app uses; returns a userEvent instance too. */
export function renderWithProviders(ui: ReactElement) {
  const user = userEvent.setup();
  const result = render(
    <ToastProvider>
      <ServersProvider>
        <JobsProvider>
          <GalleryImagesProvider>
            <GenerateSessionProvider>
              <DownloadsProvider>
                <InstallProvider>{ui}</InstallProvider>
              </DownloadsProvider>
            </GenerateSessionProvider>
          </GalleryImagesProvider>
        </JobsProvider>
      </ServersProvider>
    </ToastProvider>,
  );
  return { user, ...result };
}

/** Renders the whole app, starting on `page` (the app starts on Generate). */
export function renderApp(page: Page = "generate") {
  const user = userEvent.setup();
  return { user, ...render(<App initialPage={page} />) };
}
