/**
 * The factory's wizard, as server-rendered pages: release -> platform and arch -> extensions -> kernel
 * arguments and outputs -> the links. Every step is a GET form, so each is a URL to share, and nothing
 * needs JavaScript; no script, font or style is fetched from anywhere. Pure: the same choices, the same page.
 */
import { outputFiles, type Output } from "../core/outputs.ts";
import { esc } from "../report/html.ts";
import type { Schematic } from "./schematic.ts";

/** What the wizard offers: the release, and for each platform and extension what a user chooses by. */
export interface WizardOffer {
  version: string;
  arches: readonly string[];
  platforms: readonly { name: string; description: string; outputs: readonly Output[] }[];
  /** `choice`: what a schematic names it by (NAME, or NAME@sha256:... for one version of it) */
  extensions: readonly { name: string; version: string; description: string; choice: string }[];
  /** whether the factory signs for Secure Boot */
  secureBoot: boolean;
  /** the outputs it builds */
  outputs: readonly Output[];
}

/** The choices made so far, as the query string carries them. */
export interface Choices {
  version?: string;
  platform?: string;
  arch?: string;
  /** present once the extensions step was submitted (it may choose none) */
  extensions?: string[];
  /** present once the arguments step was submitted */
  args?: string;
  outputs?: string[];
}

export const CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const STYLE = "body{font:15px/1.45 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}code,pre{background:#f3f3f3;padding:.1rem .3rem}pre{padding:.6rem;overflow:auto}label{display:block;margin:.3rem 0}small{color:#555}";

function page(title: string, body: string): string {
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)} · bronze factory</title><style>${STYLE}</style></head>\n<body><h1>${esc(title)}</h1>\n${body}\n</body></html>\n`;
}

/** Hidden fields carrying the choices made before this step. */
function carried(choices: Choices): string {
  const fields: [string, string][] = [];
  if (choices.version) fields.push(["version", choices.version]);
  if (choices.platform) fields.push(["platform", choices.platform]);
  if (choices.arch) fields.push(["arch", choices.arch]);
  if (choices.extensions) {
    fields.push(["extensions", "chosen"]);
    for (const e of choices.extensions) fields.push(["ext", e]);
  }
  return fields.map(([name, value]) => `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`).join("");
}

const form = (choices: Choices, inner: string, submit: string) => `<form method="get" action="/ui">${carried(choices)}\n${inner}\n<p><button type="submit">${esc(submit)}</button></p></form>`;

const radio = (name: string, value: string, label: string, checked: boolean) =>
  `<label><input type="radio" name="${esc(name)}" value="${esc(value)}"${checked ? " checked" : ""} required> ${label}</label>`;

/** The page for the next step the choices need. */
export function wizardPage(offer: WizardOffer, choices: Choices): string {
  if (!choices.version) {
    return page("Custom images", `<p>Pick a release, then a platform, the extensions and kernel arguments you need: the factory builds the image on first request and links every file.</p>\n${form({}, radio("version", offer.version, `bronze ${esc(offer.version)}`, true), "Next")}`);
  }
  if (!choices.platform || !choices.arch) {
    const platforms = offer.platforms.map((p, i) => radio("platform", p.name, `<b>${esc(p.name)}</b> <small>${esc(p.description)}</small>`, i === 0)).join("\n");
    const arches = offer.arches.map((a, i) => radio("arch", a, esc(a), i === 0)).join("\n");
    return page(`bronze ${choices.version}: platform`, form(choices, `<fieldset><legend>Platform</legend>${platforms}</fieldset>\n<fieldset><legend>Architecture</legend>${arches}</fieldset>`, "Next"));
  }
  if (!choices.extensions) {
    const boxes = offer.extensions.map((e) => `<label><input type="checkbox" name="ext" value="${esc(e.choice)}"> <b>${esc(e.name)}</b> ${esc(e.version)} <small>${esc(e.description)}</small></label>`).join("\n");
    return page(`bronze ${choices.version} for ${choices.platform} (${choices.arch}): extensions`, form({ ...choices, extensions: undefined }, `<fieldset><legend>System extensions</legend>${boxes}<input type="hidden" name="extensions" value="chosen"></fieldset>`, "Next"));
  }
  const platform = offer.platforms.find((p) => p.name === choices.platform);
  const secureBootBox = offer.secureBoot ? `\n<label><input type="checkbox" name="secureboot" value="on"> Secure Boot: the UKI and systemd-boot signed with the factory's db key</label>` : "";
  const outputs = offer.outputs.map((o) => `<label><input type="checkbox" name="output" value="${esc(o)}"${platform?.outputs.includes(o) ? " checked" : ""}> ${esc(o)}</label>`).join("\n");
  return page(
    `bronze ${choices.version} for ${choices.platform} (${choices.arch}): kernel arguments`,
    form(choices, `<label>Extra kernel arguments <small>(space-separated; quote a value with spaces as name="a b")</small><br><input name="args" size="60" value="${esc(choices.args ?? "")}"></label>\n<fieldset><legend>Outputs</legend>${outputs}</fieldset>${secureBootBox}`, "Make the image"),
  );
}

/** The last page: the schematic, its ID and every link, or how to create it where creation needs a token. */
export function linksPage(offer: WizardOffer, schematic: Schematic, id: string, yaml: string, stored: boolean): string {
  const platform = offer.platforms.find((p) => p.name === schematic.platform);
  const outputs = schematic.outputs ?? platform?.outputs ?? [];
  // what boots or installs; the signed copies exist when the schematic asks for Secure Boot
  const files = outputFiles(outputs).filter((name) => schematic.secureBoot || !name.includes(".signed."));
  const base = `/image/${id}/${offer.version}`;
  const links = files.map((f) => `<li><a href="${esc(`${base}/${f}`)}">${esc(f)}</a> · <a href="${esc(`${base}/${f}.sha256`)}">sha256</a> · <a href="${esc(`${base}/${f}.sig`)}">signature</a></li>`).join("\n");
  const pxe = outputs.includes("kernel-initramfs") ? `<li>iPXE: <a href="/pxe/${esc(id)}/${esc(offer.version)}/${esc(schematic.arch)}">/pxe/${esc(id)}/${esc(offer.version)}/${esc(schematic.arch)}</a></li>` : "";
  const installer = outputs.includes("installer") ? `<p>Upgrade a machine: <code>bronze upgrade --disk DISK --image HOST/installer/${esc(id)}:${esc(offer.version)} --key factory.pub</code> (HOST: this server)</p>` : "";
  const create = stored
    ? `<p>Schematic <code>${esc(id)}</code> is stored. The first request of a file builds the image (seconds for extensions and arguments); until then it answers 202 with Retry-After.</p>`
    : `<p>Creating a schematic here needs a token: send it with <code>curl -H "Authorization: Bearer $TOKEN" --data-binary @schematic.yaml HOST/schematics</code>; it will have the ID <code>${esc(id)}</code>.</p>`;
  return page(`Your image: bronze ${offer.version} for ${schematic.platform} (${schematic.arch})`, `${create}\n<ul>\n${links}\n${pxe}\n</ul>\n${installer}\n<h2>Schematic</h2>\n<pre>${esc(yaml)}</pre>`);
}
