/**
 * A table that may be wider than a phone's screen: it scrolls inside its own box (the page never
 * does), and that box is focusable and named so the keyboard can scroll it too (axe's
 * scrollable-region-focusable).
 */
import type { ComponentChildren } from "preact";

export function ScrollTable({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard
    <section class="table-wrap" aria-label={label} tabIndex={0}>
      <table class="ops">
        <caption class="visually-hidden">{label}</caption>
        {children}
      </table>
    </section>
  );
}
