import "@testing-library/jest-dom/vitest";
import { cleanup } from "@testing-library/react";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach } from "vitest";

afterEach(() => {
  // Unmount first so listeners unregister through the mocked IPC, then drop the mocks.
  cleanup();
  clearMocks();
});
