import { InputError } from "../core/errors.ts";

/** One option a fragment sets: `value` is the text after '=', or "n" for "is not set". */
export interface ConfigSetting {
  option: string;
  value: string;
  file: string;
  line: number;
}

export interface Fragment {
  file: string;
  text: string;
}

const SET = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
const UNSET = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;

/** Parses a Kconfig fragment; anything that is not a setting, a comment or blank is an error. */
export function parseFragment({ file, text }: Fragment): ConfigSetting[] {
  const settings: ConfigSetting[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    const unset = UNSET.exec(line);
    const set = SET.exec(line);
    if (unset?.[1]) settings.push({ option: unset[1], value: "n", file, line: i + 1 });
    else if (set?.[1] && set[2] !== undefined) {
      if (set[2] === "") {
        throw new InputError(`${file}:${i + 1}: ${set[1]} has an empty value; write '# ${set[1]} is not set' or give a value`);
      }
      settings.push({ option: set[1], value: set[2], file, line: i + 1 });
    } else if (line !== "" && !line.startsWith("#")) {
      throw new InputError(`${file}:${i + 1}: not a Kconfig line: '${line}'; expected CONFIG_NAME=value or '# CONFIG_NAME is not set'`);
    }
  });
  return settings;
}

/** Merges fragments in order; a later fragment overrides an earlier one. */
export function mergeFragments(fragments: readonly Fragment[]): ConfigSetting[] {
  const merged = new Map<string, ConfigSetting>();
  for (const fragment of fragments) {
    for (const setting of parseFragment(fragment)) {
      merged.delete(setting.option);
      merged.set(setting.option, setting);
    }
  }
  return [...merged.values()];
}

export function renderSettings(settings: readonly ConfigSetting[]): string {
  return settings.map((s) => (s.value === "n" ? `# ${s.option} is not set` : `${s.option}=${s.value}`)).join("\n") + "\n";
}

/** The value of every option in a full .config ("n" for unset or absent). */
export function parseDotConfig(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const set = SET.exec(line);
    const unset = UNSET.exec(line);
    if (set?.[1] && set[2] !== undefined) values.set(set[1], set[2]);
    else if (unset?.[1]) values.set(unset[1], "n");
  }
  return values;
}

export interface ConfigMismatch {
  setting: ConfigSetting;
  actual: string;
}

/** Settings whose value did not survive Kconfig's resolution (an unmet dependency, a typo). */
export function unmetSettings(settings: readonly ConfigSetting[], dotConfig: string): ConfigMismatch[] {
  const actual = parseDotConfig(dotConfig);
  return settings
    .map((setting) => ({ setting, actual: actual.get(setting.option) ?? "n" }))
    .filter(({ setting, actual }) => setting.value !== actual);
}

/** One line per mismatch; `explain` says why, when the Kconfig files are at hand. */
export function describeMismatches(
  mismatches: readonly ConfigMismatch[],
  explain: (m: ConfigMismatch) => string = () => "unknown option or unmet dependency",
): string {
  return mismatches
    .map(
      (m) =>
        `  ${m.setting.file}:${m.setting.line}: ${m.setting.option}=${m.setting.value} but the resolved config has ` +
        `${m.actual === "n" ? "it unset" : `${m.setting.option}=${m.actual}`} (${explain(m)})`,
    )
    .join("\n");
}
