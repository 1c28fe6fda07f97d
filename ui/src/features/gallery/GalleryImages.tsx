// The app-wide cache of output thumbnails and the hook components read it through.
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { commands } from "../../bindings";
import { call, errorMessage } from "../../lib/errors";
import { createImageCache, type ImageCache } from "./imageCache";

const GalleryImagesContext = createContext<ImageCache | null>(null);

export function GalleryImagesProvider({ children }: { children: ReactNode }) {
  const [cache] = useState(() => createImageCache((path) => call(commands.galleryImage(path))));
  return <GalleryImagesContext.Provider value={cache}>{children}</GalleryImagesContext.Provider>;
}

export type GalleryImage = { src: string | null; error: string | null };

/** The image of an output file once `enabled` (e.g. scrolled into view); empty path = not downloaded yet. */
export function useGalleryImage(path: string, enabled: boolean): GalleryImage {
  const cache = useContext(GalleryImagesContext);
  if (!cache) throw new Error("useGalleryImage must be used inside <GalleryImagesProvider>");
  const [loaded, setLoaded] = useState<{ path: string; src: string | null; error: string | null } | null>(null);

  useEffect(() => {
    if (!path || !enabled || cache.peek(path)) return;
    let live = true;
    cache.get(path).then(
      (src) => live && setLoaded({ path, src, error: null }),
      (e: unknown) => live && setLoaded({ path, src: null, error: errorMessage(e) }),
    );
    return () => {
      live = false;
    };
  }, [cache, path, enabled]);

  if (!path) return { src: null, error: null };
  const cached = cache.peek(path);
  if (cached) return { src: cached, error: null };
  if (loaded?.path === path) return { src: loaded.src, error: loaded.error };
  return { src: null, error: null };
}
