import { useState } from "react";
import { ToastProvider } from "./components/Toast";
import { ActiveServerLine } from "./features/servers/ActiveServerLine";
import { ServersPage } from "./features/servers/ServersPage";
import { ServersProvider, useServers } from "./features/servers/ServersContext";
import { SettingsPage } from "./features/settings/SettingsPage";

type Page = "servers" | "settings";

const PAGES: { id: Page; label: string }[] = [
  { id: "servers", label: "Servers" },
  { id: "settings", label: "Settings" },
];

export function App() {
  return (
    <ToastProvider>
      <ServersProvider>
        <Shell />
      </ServersProvider>
    </ToastProvider>
  );
}

function Shell() {
  const [page, setPage] = useState<Page>("servers");
  const { servers } = useServers();

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
                </button>
              </li>
            ))}
          </ul>
        </nav>
      </aside>
      <main className="main">{page === "servers" ? <ServersPage /> : <SettingsPage />}</main>
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
