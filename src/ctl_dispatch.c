/* placeholder: split out of its parent module */
