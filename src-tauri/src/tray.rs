//! The tray icon: its menu lists the servers and switches the active one in one click.

use comfyfleet_core::health::ActiveChange;
use comfyfleet_core::servers::Server;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};
use tauri_specta::Event;

use crate::events::{ActiveServerChanged, ServersChanged};
use crate::AppState;

const TRAY_ID: &str = "comfyfleet";
const SERVER_PREFIX: &str = "server:";

/// The message shown when the active server changes by the user's hand.
pub fn activation_message(server: Option<&Server>) -> ActiveChange {
    match server {
        Some(s) => ActiveChange {
            server_id: Some(s.id.clone()),
            name: Some(s.name.clone()),
            message: format!("'{}' is now the active server.", s.name),
        },
        None => ActiveChange {
            server_id: None,
            name: None,
            message: "No server is active now.".into(),
        },
    }
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, servers: &[Server]) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    let title = MenuItem::with_id(app, "title", "Active server", false, None::<&str>)?;
    menu.append(&title)?;
    if servers.is_empty() {
        menu.append(&MenuItem::with_id(
            app,
            "none",
            "No servers yet — add one in the app",
            false,
            None::<&str>,
        )?)?;
    }
    for s in servers {
        let item = CheckMenuItem::with_id(
            app,
            format!("{SERVER_PREFIX}{}", s.id),
            &s.name,
            true,
            s.active,
            None::<&str>,
        )?;
        menu.append(&item)?;
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(
        app,
        "show",
        "Show ComfyFleet",
        true,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(
        app,
        "quit",
        "Quit ComfyFleet",
        true,
        None::<&str>,
    )?)?;
    Ok(menu)
}

/// Create the tray icon (an empty menu, filled by `refresh`).
pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let icon = tauri::image::Image::from_bytes(include_bytes!("../../icons/tray.png"))?;
    let menu = build_menu(app, &[])?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon)
        .tooltip("ComfyFleet")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| {
            let id = event.id().as_ref().to_string();
            let app = app.clone();
            match id.as_str() {
                "quit" => app.exit(0),
                "show" => show_window(&app),
                _ => {
                    if let Some(server_id) = id.strip_prefix(SERVER_PREFIX).map(str::to_string) {
                        tauri::async_runtime::spawn(async move {
                            activate_from_tray(&app, &server_id).await
                        });
                    }
                }
            }
        })
        .build(app)?;
    let handle = app.clone();
    tauri::async_runtime::spawn(async move { refresh(&handle).await });
    Ok(())
}

fn show_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

async fn activate_from_tray(app: &AppHandle, server_id: &str) {
    let state = app.state::<AppState>();
    match state.fleet.servers.activate(Some(server_id)).await {
        Ok(server) => {
            refresh(app).await;
            let _ = ActiveServerChanged::from(activation_message(server.as_ref())).emit(app);
            let _ = ServersChanged {
                reason: "activated from the tray".into(),
            }
            .emit(app);
        }
        Err(e) => tracing::warn!(error = %e, "tray activation failed"),
    }
}

/// Rebuild the tray menu from the current list.
pub async fn refresh(app: &AppHandle) {
    let Some(state) = app.try_state::<AppState>() else {
        return;
    };
    let servers = match state.fleet.servers.list().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "could not list servers for the tray");
            return;
        }
    };
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        match build_menu(app, &servers) {
            Ok(menu) => {
                let _ = tray.set_menu(Some(menu));
                let active = servers
                    .iter()
                    .find(|s| s.active)
                    .map(|s| s.name.as_str())
                    .unwrap_or("no active server");
                let _ = tray.set_tooltip(Some(format!("ComfyFleet — {active}")));
            }
            Err(e) => tracing::warn!(error = %e, "could not build the tray menu"),
        }
    }
}
