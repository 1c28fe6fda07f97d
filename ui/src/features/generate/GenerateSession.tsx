// What the Generate page holds while you look at other pages: the form as typed and the job it last ran.
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import type { Template } from "../../bindings";
import { DEFAULT_PRIORITY, emptyWorkflowDraft, type TemplateDraft, type WorkflowDraft } from "./generateModel";

export type SourceMode = "template" | "workflow";

export type GenerateDraft = {
  mode: SourceMode;
  /** The built-in templates, once loaded. */
  templates: Template[] | null;
  /** null until the templates are loaded. */
  template: TemplateDraft | null;
  workflow: WorkflowDraft;
  /** A server id; null = Auto. */
  target: string | null;
  priority: number;
  /** The job the page shows: the last one it ran. */
  currentJobId: string | null;
};

type Session = { draft: GenerateDraft; update: (change: (d: GenerateDraft) => GenerateDraft) => void };

const initialDraft: GenerateDraft = {
  mode: "template",
  templates: null,
  template: null,
  workflow: emptyWorkflowDraft,
  target: null,
  priority: DEFAULT_PRIORITY,
  currentJobId: null,
};

const GenerateSessionContext = createContext<Session | null>(null);

export function GenerateSessionProvider({ children }: { children: ReactNode }) {
  const [draft, setDraft] = useState<GenerateDraft>(initialDraft);
  const update = useCallback((change: (d: GenerateDraft) => GenerateDraft) => setDraft(change), []);
  const session = useMemo(() => ({ draft, update }), [draft, update]);
  return <GenerateSessionContext.Provider value={session}>{children}</GenerateSessionContext.Provider>;
}

export function useGenerateSession(): Session {
  const session = useContext(GenerateSessionContext);
  if (!session) throw new Error("useGenerateSession must be used inside <GenerateSessionProvider>");
  return session;
}
