import { describe, expect, it } from "vitest";
import { TEMPLATES } from "../../test/fakeBackend";
import {
  draftFromTemplate,
  inputKey,
  initialValues,
  nameFromFile,
  nameFromPrompt,
  randomSeed,
  SEED_MAX,
  templateRequest,
  validateTemplateDraft,
  workflowEdits,
  workflowRequest,
} from "./generateModel";

const [sd15, sdxl] = TEMPLATES;

describe("template drafts", () => {
  it("start from the template's defaults and keep prompt and seed when switching", () => {
    const d = draftFromTemplate(sd15);
    expect(d).toEqual({ templateId: "sd15", prompt: sd15.defaults.prompt, negative: "blurry, low quality, watermark", seed: "", steps: "20", width: "512", height: "512" });
    const switched = draftFromTemplate(sdxl, { ...d, prompt: "a red fox", seed: "42", steps: "7" });
    expect(switched).toMatchObject({ templateId: "sdxl", prompt: "a red fox", seed: "42", steps: "25", width: "1024", height: "1024" });
  });

  it("flag a missing prompt, a bad seed, steps out of range and sizes that are not multiples of 8", () => {
    const ok = draftFromTemplate(sd15);
    expect(validateTemplateDraft(ok)).toEqual({});
    expect(validateTemplateDraft({ ...ok, seed: String(SEED_MAX) })).toEqual({});
    const errors = validateTemplateDraft({ ...ok, prompt: "  ", seed: "-3", steps: "151", width: "500", height: "8192" });
    expect(errors.prompt).toBe("Describe the image you want.");
    expect(errors.seed).toContain("Leave it empty for a random one");
    expect(errors.steps).toBe("Steps must be a whole number from 1 to 150.");
    expect(errors.width).toBe("Width must be a multiple of 8 (e.g. 512, 768, 1024).");
    expect(errors.height).toBe("Height must be a whole number of pixels from 64 to 4096.");
    expect(validateTemplateDraft({ ...ok, seed: String(SEED_MAX + 1) }).seed).toBeDefined();
  });

  it("build the request: empty seed is null, numbers are numbers, the prompt names the job", () => {
    const d = { ...draftFromTemplate(sd15), prompt: "  a red fox\n in snow ", seed: " ", steps: "30" };
    expect(templateRequest(d, sd15, null, 5)).toEqual({
      name: "a red fox in snow",
      source: {
        kind: "template",
        template_id: "sd15",
        fields: { prompt: "a red fox\n in snow", negative: "blurry, low quality, watermark", seed: null, steps: 30, width: 512, height: 512 },
      },
      target: null,
      priority: 5,
    });
    expect(templateRequest({ ...d, seed: "123" }, sd15, "id-gpu", 9).source).toMatchObject({ fields: { seed: 123 } });
  });

  it("names jobs briefly", () => {
    expect(nameFromPrompt("x".repeat(80), "SD 1.5")).toHaveLength(60);
    expect(nameFromPrompt("x".repeat(80), "SD 1.5").endsWith("…")).toBe(true);
    expect(nameFromPrompt("   ", "SD 1.5")).toBe("SD 1.5");
    expect(nameFromFile("portrait-v2.JSON")).toBe("portrait-v2");
    expect(nameFromFile(null)).toBe("Imported workflow");
  });

  it("rolls seeds over the whole range", () => {
    expect(randomSeed(() => 0)).toBe(0);
    expect(randomSeed(() => 0.9999999999)).toBe(SEED_MAX);
  });
});

describe("workflow edits", () => {
  const info = {
    node_count: 3,
    models: [],
    text_inputs: [
      { node_id: "6", class_type: "CLIPTextEncode", field: "text", value: "a cat" },
      { node_id: "7", class_type: "CLIPTextEncode", field: "text", value: "ugly" },
    ],
  };

  it("send only the inputs that changed", () => {
    const values = { ...initialValues(info), [inputKey("7", "text")]: "blurry" };
    expect(workflowEdits(info, values)).toEqual([{ node_id: "7", field: "text", value: "blurry" }]);
    expect(workflowRequest({ json: "{}", fileName: "wf.json", info, values, error: null }, "id-a", 3)).toEqual({
      name: "wf",
      source: { kind: "workflow", workflow_json: "{}", edits: [{ node_id: "7", field: "text", value: "blurry" }] },
      target: "id-a",
      priority: 3,
    });
  });
});
