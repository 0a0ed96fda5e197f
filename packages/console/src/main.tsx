import { QueryClient, QueryClientProvider } from "@tanstack/preact-query";
import { render } from "preact";
import { App } from "./App.js";
import { interceptLinks } from "./router.js";

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // The SDK already retries what is safe to retry; a second layer would only delay error states.
      retry: false,
      staleTime: 15_000,
      refetchOnWindowFocus: true,
    },
  },
});

const root = document.getElementById("app");
if (root) {
  interceptLinks(root);
  render(
    <QueryClientProvider client={queryClient}>
      <App />
    </QueryClientProvider>,
    root,
  );
}
