import { screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { installFakeBackend, job, succeededJob, uiError } from "../../test/fakeBackend";
import { renderApp } from "../../test/render";
import { galleryEntries } from "./GalleryPage";

const T0 = 1_700_000_000_000;

const JOBS = [
  succeededJob("older", ["older_00001_.png"], { name: "Older", finished_ms: T0 + 10_000 }),
  succeededJob("newer", ["newer_00001_.png", "newer_00002_.png"], { name: "Newer", finished_ms: T0 + 50_000 }),
  job({ id: "failed", state: "failed", error: "boom", outputs: [{ node_id: "9", filename: "partial.png", path: "/gallery/failed/partial.png" }] }),
  succeededJob("downloading", ["late.png"], { finished_ms: T0 + 90_000, outputs: [{ node_id: "9", filename: "late.png", path: "" }] }),
];

describe("Gallery", () => {
  it("says how to get images when there are none", async () => {
    installFakeBackend({ jobs: [job({ id: "q" })] });
    const { user } = renderApp("gallery");
    const empty = await screen.findByTestId("gallery-empty");
    expect(empty).toHaveTextContent("No images yet");
    expect(empty).toHaveTextContent("Generate page");
    expect(screen.queryAllByTestId("gallery-item")).toHaveLength(0);
    await user.click(within(empty).getByRole("button", { name: "Generate an image" }));
    expect(screen.getByTestId("nav-generate")).toHaveAttribute("aria-current", "page");
  });

  it("shows the saved images of succeeded jobs, newest first, loaded once through galleryImage", async () => {
    const fake = installFakeBackend({ jobs: JOBS });
    renderApp("gallery");
    await waitFor(() => expect(screen.getAllByTestId("gallery-item")).toHaveLength(3));
    const items = screen.getAllByTestId("gallery-item");
    expect(items.map((i) => i.dataset.path)).toEqual([
      "/gallery/newer/newer_00001_.png",
      "/gallery/newer/newer_00002_.png",
      "/gallery/older/older_00001_.png",
    ]);
    expect(screen.getByTestId("gallery-summary")).toHaveTextContent("3 images, newest first");
    expect(items[0]).toHaveTextContent("Newer");
    expect(items[0]).toHaveTextContent("newer_00001_.png");
    for (const item of items) {
      expect(await within(item).findByRole("img")).toHaveAttribute("src", `data:image/png;base64,${btoa(item.dataset.path!)}`);
    }
    expect(fake.callsTo("gallery_image").map((c) => c.args.path).sort()).toEqual(items.map((i) => i.dataset.path).sort());
  });

  it("opens an image or shows it in its folder through openPath", async () => {
    const fake = installFakeBackend({ jobs: JOBS });
    const { user } = renderApp("gallery");
    const [first] = await screen.findAllByTestId("gallery-item");
    await user.click(within(first).getByTestId("open-output"));
    await user.click(within(first).getByTestId("reveal-output"));
    await waitFor(() => expect(fake.callsTo("open_path")).toHaveLength(2));
    expect(fake.callsTo("open_path").map((c) => c.args)).toEqual([
      { path: "/gallery/newer/newer_00001_.png", reveal: false },
      { path: "/gallery/newer/newer_00001_.png", reveal: true },
    ]);
  });

  it("says why an image could not be opened", async () => {
    installFakeBackend({ jobs: JOBS }, {
      open_path: (a) => {
        throw uiError(`${String(a.path)} no longer exists. It may have been moved or deleted.`, "gallery.missing");
      },
    });
    const { user } = renderApp("gallery");
    const [first] = await screen.findAllByTestId("gallery-item");
    await user.click(within(first).getByTestId("open-output"));
    expect(await screen.findByTestId("toast")).toHaveTextContent("/gallery/newer/newer_00001_.png no longer exists.");
  });

  it("shows a thumbnail that cannot be read as a warning instead of an image", async () => {
    installFakeBackend({ jobs: [JOBS[0]] }, {
      gallery_image: () => {
        throw uiError("Could not read /gallery/older/older_00001_.png: permission denied", "gallery.read");
      },
    });
    renderApp("gallery");
    const [item] = await screen.findAllByTestId("gallery-item");
    expect(await within(item).findByText(/could not be shown: Could not read .* permission denied/)).toBeInTheDocument();
    expect(within(item).queryByRole("img")).not.toBeInTheDocument();
  });

  it("leaves out failed jobs and images still downloading", () => {
    expect(galleryEntries(JOBS).map((e) => e.output.filename)).toEqual(["newer_00001_.png", "newer_00002_.png", "older_00001_.png"]);
  });
  it("deletes an image after asking, and keeps it when the question is cancelled", async () => {
    const fake = installFakeBackend({ jobs: JOBS });
    const { user } = renderApp("gallery");
    await waitFor(() => expect(screen.getAllByTestId("gallery-item")).toHaveLength(3));

    await user.click(screen.getByRole("button", { name: "Delete newer_00002_.png" }));
    const ask = await screen.findByTestId("confirm-delete-output");
    expect(ask).toHaveTextContent("newer_00002_.png");
    expect(ask).toHaveTextContent("cannot be undone");
    await user.click(within(ask).getByTestId("confirm-delete-output-no"));
    expect(fake.callsTo("gallery_delete")).toHaveLength(0);
    expect(screen.getAllByTestId("gallery-item")).toHaveLength(3);

    await user.click(screen.getByRole("button", { name: "Delete newer_00002_.png" }));
    await user.click(within(await screen.findByTestId("confirm-delete-output")).getByTestId("confirm-delete-output-yes"));
    await waitFor(() => expect(screen.getAllByTestId("gallery-item")).toHaveLength(2));
    expect(fake.callsTo("gallery_delete")[0].args).toEqual({ jobId: "newer", path: "/gallery/newer/newer_00002_.png" });
    expect(screen.getAllByTestId("gallery-item").map((i) => i.dataset.path)).toEqual(["/gallery/newer/newer_00001_.png", "/gallery/older/older_00001_.png"]);
    expect(screen.queryByTestId("confirm-delete-output")).not.toBeInTheDocument();
  });

  it("says why an image could not be deleted", async () => {
    installFakeBackend({ jobs: JOBS }, {
      gallery_delete: () => {
        throw uiError("Could not delete /gallery/older/older_00001_.png: permission denied. Check that the folder is writable, then try again.", "jobs.delete_failed");
      },
    });
    const { user } = renderApp("gallery");
    await waitFor(() => expect(screen.getAllByTestId("gallery-item")).toHaveLength(3));
    await user.click(screen.getByRole("button", { name: "Delete older_00001_.png" }));
    await user.click(within(await screen.findByTestId("confirm-delete-output")).getByTestId("confirm-delete-output-yes"));
    const toast = await screen.findByTestId("toast");
    expect(toast).toHaveTextContent("Could not delete older_00001_.png");
    expect(toast).toHaveTextContent("permission denied");
    expect(screen.getAllByTestId("gallery-item")).toHaveLength(3);
  });
});
