import { lazy, Suspense, useState } from "react";
import { Loading } from "./components/Spinner";
import { ToastProvider } from "./components/Toast";
import { DownloadsPage } from "./features/downloads/DownloadsPage";
import { DownloadsProvider, useDownloads } from "./features/downloads/DownloadsContext";
import { isActive } from "./features/downloads/downloadFormat";
import { GalleryImagesProvider } from "./features/gallery/GalleryImages";
import { GalleryPage } from "./features/gallery/GalleryPage";
import { GeneratePage } from "./features/generate/GeneratePage";
import { GenerateSessionProvider } from "./features/generate/GenerateSession";
import { InstallProvider, useInstall } from "./features/install/InstallContext";
import { InstallPage } from "./features/install/InstallPage";
import { JobsPage } from "./features/jobs/JobsPage";
import { JobsProvider, useJobs } from "./features/jobs/JobsContext";
import { ActiveServerLine } from "./features/servers/ActiveServerLine";
import { ServersPage } from "./features/servers/ServersPage";
import { ServersProvider, useServers } from "./features/servers/ServersContext";
import { SettingsPage } from "./features/settings/SettingsPage";

// The cost monitor brings the charting library; it loads when the page is first opened, not at startup.
const CostsPage = lazy(() => import("./features/costs/CostsPage").then((m) => ({ default: m.CostsPage })));

export type Page = "generate" | "jobs" | "gallery" | "downloads" | "servers" | "costs" | "install" | "settings";

const PAGES: { id: Page; label: string }[] = [
  { id: "generate", label: "Generate" },
  { id: "jobs", label: "Jobs" },
  { id: "gallery", label: "Gallery" },
  { id: "downloads", label: "Downloads" },
  { id: "servers", label: "Servers" },
  { id: "costs", label: "Costs" },
  { id: "install", label: "Install" },
  { id: "settings", label: "Settings" },
];

/** The whole app. `initialPage` is the page shown first (Generate). */
export function App({ initialPage = "generate" }: { initialPage?: Page }) {
  return (
    <ToastProvider>
      <ServersProvider>
        <JobsProvider>
          <GalleryImagesProvider>
            <GenerateSessionProvider>
              <DownloadsProvider>
                <InstallProvider>
                  <Shell initialPage={initialPage} />
                </InstallProvider>
              </DownloadsProvider>
            </GenerateSessionProvider>
          </GalleryImagesProvider>
        </JobsProvider>
      </ServersProvider>
    </ToastProvider>
  );
}

function Shell({ initialPage }: { initialPage: Page }) {
  const [page, setPage] = useState<Page>(initialPage);
  const { servers } = useServers();
  const { jobs } = useJobs();
  const { downloads } = useDownloads();
  const { status: install } = useInstall();
  const activeDownloads = downloads ? downloads.filter(isActive).length : 0;
  const activeJobs = jobs ? jobs.filter((j) => j.state === "queued" || j.state === "dispatched" || j.state === "running").length : 0;

  return (
    <div className="app">
      <aside className="sidebar">
        <div className="brand">
          <Logo />
          <span className="brand-name">ComfyFleet</span>
        </div>
        <nav aria-label="Main">
          <ul className="nav">
            {PAGES.map((p) => (
              <li key={p.id}>
                <button
                  type="button"
                  className="nav-item"
                  data-testid={`nav-${p.id}`}
                  aria-current={page === p.id ? "page" : undefined}
                  onClick={() => setPage(p.id)}
                >
                  {p.label}
                  {p.id === "servers" && servers && servers.length > 0 && <span className="nav-count">{servers.length}</span>}
                  {p.id === "downloads" && activeDownloads > 0 && (
                    <span className="nav-count nav-count-live" data-testid="nav-downloads-count" title={`${activeDownloads} in progress`}>
                      {activeDownloads}
                    </span>
                  )}
                  {p.id === "install" && install?.state === "running" && (
                    <span className="nav-count nav-count-live" data-testid="nav-install-running" title="Installing">
                      …
                    </span>
                  )}
                  {p.id === "jobs" && activeJobs > 0 && (
                    <span className="nav-count nav-count-live" data-testid="nav-jobs-count" title={`${activeJobs} in the queue`}>
                      {activeJobs}
                    </span>
                  )}
                </button>
              </li>
            ))}
          </ul>
        </nav>
      </aside>
      <main className="main">
        {page === "generate" ? (
          <GeneratePage />
        ) : page === "jobs" ? (
          <JobsPage onGoToGenerate={() => setPage("generate")} />
        ) : page === "gallery" ? (
          <GalleryPage onGoToGenerate={() => setPage("generate")} />
        ) : page === "downloads" ? (
          <DownloadsPage />
        ) : page === "servers" ? (
          <ServersPage onGoToInstall={() => setPage("install")} onGoToSettings={() => setPage("settings")} />
        ) : page === "costs" ? (
          <Suspense fallback={<Loading>Loading the costs…</Loading>}>
            <CostsPage onGoToGenerate={() => setPage("generate")} />
          </Suspense>
        ) : page === "install" ? (
          <InstallPage onGoToGenerate={() => setPage("generate")} onGoToServers={() => setPage("servers")} />
        ) : (
          <SettingsPage />
        )}
      </main>
      <footer className="statusbar" aria-label="Status">
        <ActiveServerLine />
      </footer>
    </div>
  );
}

function Logo() {
  return (
    <svg className="logo" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
      <rect x="2" y="4" width="20" height="6" rx="2" fill="currentColor" opacity="0.9" />
      <rect x="2" y="14" width="20" height="6" rx="2" fill="currentColor" opacity="0.55" />
      <circle cx="6" cy="7" r="1.3" fill="#0f1115" />
      <circle cx="6" cy="17" r="1.3" fill="#0f1115" />
    </svg>
  );
}
