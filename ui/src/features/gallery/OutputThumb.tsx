import { useEffect, useRef, useState } from "react";
import type { JobOutput } from "../../bindings";
import { Spinner } from "../../components/Spinner";
import { useGalleryImage } from "./GalleryImages";

type Props = {
  output: JobOutput;
  size?: "sm" | "md" | "lg";
  /** Called on click; without it the thumbnail is a plain image. */
  onOpen?: (output: JobOutput) => void;
  testId?: string;
};

/** Has the element come near the viewport? Always true where IntersectionObserver is missing. */
function useNearViewport<T extends Element>(): [React.RefObject<T | null>, boolean] {
  const ref = useRef<T>(null);
  const [near, setNear] = useState(() => typeof IntersectionObserver === "undefined");
  useEffect(() => {
    if (near || !ref.current) return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) {
          setNear(true);
          observer.disconnect();
        }
      },
      { rootMargin: "300px" },
    );
    observer.observe(ref.current);
    return () => observer.disconnect();
  }, [near]);
  return [ref, near];
}

/** An output image, loaded lazily when it scrolls near the view and cached by path. */
export function OutputThumb({ output, size = "md", onOpen, testId }: Props) {
  const [ref, near] = useNearViewport<HTMLElement>();
  const { src, error } = useGalleryImage(output.path, near);
  const downloaded = output.path !== "";

  const body = src ? (
    <img src={src} alt={output.filename} className="thumb-img" draggable={false} />
  ) : error ? (
    <span className="thumb-placeholder thumb-error" title={error}>
      <span aria-hidden="true">⚠</span>
      <span className="sr-only">{`${output.filename} could not be shown: ${error}`}</span>
    </span>
  ) : (
    <span className="thumb-placeholder" title={downloaded ? `Loading ${output.filename}` : `${output.filename} is still downloading`}>
      <Spinner />
    </span>
  );

  const className = `thumb thumb-${size}`;
  if (onOpen && downloaded) {
    return (
      <button
        ref={ref as React.RefObject<HTMLButtonElement>}
        type="button"
        className={`${className} thumb-button`}
        data-testid={testId}
        data-path={output.path}
        title={`Open ${output.filename}`}
        aria-label={`Open ${output.filename}`}
        onClick={() => onOpen(output)}
      >
        {body}
      </button>
    );
  }
  return (
    <span ref={ref as React.RefObject<HTMLSpanElement>} className={className} data-testid={testId} data-path={output.path} title={output.filename}>
      {body}
    </span>
  );
}
