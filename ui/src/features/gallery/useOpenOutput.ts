import { useCallback } from "react";
import { commands, type JobOutput } from "../../bindings";
import { useToast } from "../../components/Toast";
import { call, errorMessage } from "../../lib/errors";

/** Opens an output file in the system viewer, or shows it in its folder; says why when that fails. */
export function useOpenOutput(): (output: JobOutput, reveal?: boolean) => Promise<void> {
  const toast = useToast();
  return useCallback(
    async (output: JobOutput, reveal = false) => {
      try {
        await call(commands.openPath(output.path, reveal));
      } catch (e) {
        toast.show(errorMessage(e), { kind: "error", title: reveal ? `Could not show ${output.filename} in its folder` : `Could not open ${output.filename}` });
      }
    },
    [toast],
  );
}
