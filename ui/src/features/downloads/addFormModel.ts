// The "Add download" form: its values, the checks made before anything is sent, and the input for the core.
import type { DownloadInput } from "../../bindings";

export type AddValues = { url: string; destination: string; sha256: string };
export type AddErrors = Partial<Record<keyof AddValues, string>>;

export const emptyAddValues: AddValues = { url: "", destination: "", sha256: "" };

/** A full path on Linux/macOS (/…, ~ is not expanded by the core), Windows (C:\…, C:/…) or a network share (\\…). */
export function isAbsolutePath(path: string): boolean {
  return path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\");
}

/** The same checks the core makes, so mistakes show next to the field before anything is sent. */
export function validateAdd(values: AddValues): AddErrors {
  const errors: AddErrors = {};
  const url = values.url.trim();
  if (url === "") {
    errors.url = "Enter the link to the file, starting with https://.";
  } else {
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      parsed = null;
    }
    if (!parsed) errors.url = "This is not a link. Paste the full address of the file, starting with https://.";
    else if (parsed.protocol !== "http:" && parsed.protocol !== "https:") errors.url = "Only http:// and https:// links can be downloaded.";
    else if (parsed.hostname === "") errors.url = "This link has no host name.";
  }
  const dest = values.destination.trim();
  if (dest !== "" && !isAbsolutePath(dest)) {
    errors.destination = "Give a full path, such as /home/you/models or C:\\Models, or leave it empty for the downloads folder.";
  }
  const sha = values.sha256.trim().replace(/^sha256:/i, "");
  if (sha !== "" && !/^[0-9a-fA-F]{64}$/.test(sha)) {
    errors.sha256 = `A SHA-256 is 64 hexadecimal digits (0-9, a-f); this has ${sha.length} characters.`;
  }
  return errors;
}

export function hasErrors(errors: AddErrors): boolean {
  return Object.values(errors).some(Boolean);
}

export function toDownloadInput(values: AddValues): DownloadInput {
  const dest = values.destination.trim();
  const sha = values.sha256.trim();
  return { url: values.url.trim(), destination: dest === "" ? null : dest, sha256: sha === "" ? null : sha };
}
