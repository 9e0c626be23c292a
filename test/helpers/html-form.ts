/** A form's fields as a browser sends them untouched: hidden and text inputs, and checked radios and boxes. */
export function formFields(html: string): [string, string][] {
  const out: [string, string][] = [];
  for (const input of html.match(/<input [^>]*>/g) ?? []) {
    const name = /name="([^"]*)"/.exec(input)?.[1];
    const value = /value="([^"]*)"/.exec(input)?.[1] ?? "";
    const type = /type="([^"]*)"/.exec(input)?.[1] ?? "text";
    if (name && (type === "hidden" || type === "text" || input.includes(" checked"))) out.push([name, value]);
  }
  return out;
}
