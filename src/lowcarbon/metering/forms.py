"""Forms of the metering pages: the readings file upload."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

#: file name endings the upload accepts; .xlsx/.xlsm are read as Excel, the others as CSV text
ACCEPTED_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm")


class ReadingsUploadForm(forms.Form):
    """A CSV or Excel (.xlsx) file of meter readings."""

    file = forms.FileField(
        label=_("Readings file (CSV or Excel .xlsx)"),
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(ACCEPTED_SUFFIXES)}),
    )

    def clean_file(self):  # type: ignore[no-untyped-def]
        f = self.cleaned_data["file"]
        name = (f.name or "").lower()
        if name.endswith(".xls"):
            raise forms.ValidationError(
                _(
                    "Old Excel files (.xls) cannot be read. Save the sheet as .xlsx or CSV and upload it again."
                )
            )
        if not name.endswith(ACCEPTED_SUFFIXES):
            raise forms.ValidationError(_("Please upload a CSV file (.csv) or an Excel workbook (.xlsx)."))
        if f.size == 0:
            raise forms.ValidationError(_("The file is empty."))
        return f
