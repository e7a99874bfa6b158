import { render } from "preact";
import { AccountPage } from "./account";

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<AccountPage />, root);
}
