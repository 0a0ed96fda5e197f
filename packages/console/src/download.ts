/**
 * Saves text built in the page as a file: a Blob behind an object URL, clicked through a
 * temporary <a download>. Nothing is fetched (the CSP's connect-src does not apply) and a download
 * is not a page load, so the console's CSP lets it through; the URL is revoked once the browser
 * has taken the file.
 */
export function downloadText(text: string, fileName: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = fileName;
  link.hidden = true;
  document.body.append(link);
  try {
    link.click();
  } finally {
    link.remove();
    // Revoked on the next task: the click has handed the URL to the download by then.
    setTimeout(() => URL.revokeObjectURL(url), 0);
  }
}
