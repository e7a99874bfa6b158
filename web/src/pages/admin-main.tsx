import { render } from "preact";
import { AdminPage } from "./admin";

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<AdminPage />, root);
}
